"""The memcached wire protocols at the byte level, against a local binary-protocol server.

The fake server speaks the documented binary protocol (memcached
``doc/protocol-binary.xml``): SASL list mechanisms, SASL auth and stat, with the status
codes a real server (or MemCachier) returns. It records what the client sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from collectors.memcached.protocol import (
    HEADER,
    OP_SASL_AUTH,
    OP_SASL_LIST_MECHS,
    OP_STAT,
    AuthenticationError,
    MemcachedConnection,
    MemcachedError,
    encode_request,
    parse_text_stats,
    sasl_plain,
)

RESPONSE = 0x81


def response(
    opcode: int, opaque: int, status: int = 0, key: bytes = b"", value: bytes = b""
) -> bytes:
    body = key + value
    return HEADER.pack(RESPONSE, opcode, len(key), 0, 0, status, len(body), opaque, 0) + body


@dataclass
class FakeBinaryServer:
    mechanisms: bytes = b"PLAIN"
    users: dict[str, str] = field(default_factory=lambda: {"app": "pw"})
    supports_sasl: bool = True
    requests: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        authenticated = False
        try:
            while True:
                header = await reader.readexactly(24)
                _, opcode, key_len, extras_len, _, _, body_len, opaque, _ = HEADER.unpack(header)
                body = await reader.readexactly(body_len)
                key = body[extras_len : extras_len + key_len]
                value = body[extras_len + key_len :]
                self.requests.append((opcode, key, value))
                if opcode in (OP_SASL_LIST_MECHS, OP_SASL_AUTH) and not self.supports_sasl:
                    writer.write(response(opcode, opaque, 0x81, value=b"Unknown command"))
                elif opcode == OP_SASL_LIST_MECHS:
                    writer.write(response(opcode, opaque, value=self.mechanisms))
                elif opcode == OP_SASL_AUTH:
                    _, user, password = value.split(b"\0")
                    if self.users.get(user.decode()) == password.decode():
                        authenticated = True
                        writer.write(response(opcode, opaque, value=b"Authenticated"))
                    else:
                        writer.write(response(opcode, opaque, 0x20, value=b"Auth failure"))
                elif opcode == OP_STAT:
                    if self.supports_sasl and not authenticated:
                        writer.write(response(opcode, opaque, 0x20, value=b"Auth failure"))
                    else:
                        for k, v in ((b"pid", b"42"), (b"get_hits", b"7"), (b"version", b"1.6.x")):
                            writer.write(response(opcode, opaque, key=k, value=v))
                        writer.write(response(opcode, opaque))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def serving(fake: FakeBinaryServer) -> AsyncIterator[FakeBinaryServer]:
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()
        await server.wait_closed()


def connection(
    fake: FakeBinaryServer, user: str | None, password: str | None
) -> MemcachedConnection:
    return MemcachedConnection("127.0.0.1", fake.port, username=user, password=password)


async def test_sasl_plain_then_stat() -> None:
    async with serving(FakeBinaryServer()) as fake:
        conn = connection(fake, "app", "pw")
        stats = await conn.stats()
        again = await conn.stats()  # same connection: no second authentication
        await conn.close()
    assert stats == {"pid": "42", "get_hits": "7", "version": "1.6.x"} == again
    assert fake.requests == [
        (OP_SASL_LIST_MECHS, b"", b""),
        (OP_SASL_AUTH, b"PLAIN", b"\0app\0pw"),
        (OP_STAT, b"", b""),
        (OP_STAT, b"", b""),
    ]


async def test_wrong_password() -> None:
    async with serving(FakeBinaryServer()) as fake:
        conn = connection(fake, "app", "nope")
        with pytest.raises(AuthenticationError, match="failed for user 'app'"):
            await conn.stats()
        await conn.close()


async def test_no_plain_mechanism_is_named() -> None:
    async with serving(FakeBinaryServer(mechanisms=b"CRAM-MD5 DIGEST-MD5")) as fake:
        conn = connection(fake, "app", "pw")
        with pytest.raises(AuthenticationError, match=r"\['CRAM-MD5', 'DIGEST-MD5'\].*PLAIN"):
            await conn.stats()
        await conn.close()


async def test_server_without_sasl() -> None:
    async with serving(FakeBinaryServer(supports_sasl=False)) as fake:
        conn = connection(fake, "app", "pw")
        with pytest.raises(AuthenticationError, match="does not support SASL"):
            await conn.stats()
        await conn.close()


def test_request_encoding() -> None:
    packet = encode_request(OP_SASL_AUTH, b"PLAIN", sasl_plain("u", "p"), opaque=9)
    assert packet[:24] == struct.pack(">BBHBBHIIQ", 0x80, 0x21, 5, 0, 0, 0, 9, 9, 0)
    assert packet[24:] == b"PLAIN\0u\0p"


async def test_garbage_reply_is_an_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(24)
        writer.write(b"SERVER_ERROR nope\r\n" + b"\0" * 10)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = MemcachedConnection("127.0.0.1", port, username="a", password="b")
    with pytest.raises(MemcachedError, match="magic"):
        await conn.stats()
    await conn.close()
    server.close()
    await server.wait_closed()


def test_text_stats_parsing() -> None:
    lines = [
        b"STAT pid 1234\r\n",
        b"STAT rusage_user 0.123456\r\n",
        b"STAT version 1.6.18\r\n",
        b"STAT libevent 2.1.12-stable\r\n",
        b"STAT some_multi word value\r\n",
        b"garbage\r\n",
    ]
    assert parse_text_stats(lines) == {
        "pid": "1234",
        "rusage_user": "0.123456",
        "version": "1.6.18",
        "libevent": "2.1.12-stable",
        "some_multi": "word value",
    }

"""Just enough of the memcached protocols to read ``stats``, on asyncio streams.

* Text protocol: ``stats\\r\\n`` -> ``STAT <name> <value>\\r\\n`` ... ``END\\r\\n``.
* Binary protocol, for servers that require SASL (MemCachier, ``memcached -S``): list
  the mechanisms (0x20), authenticate with PLAIN (0x21), then ``stat`` (0x10), whose
  reply is one packet per statistic ended by a packet with an empty key.

Written here rather than taken from a client library: no maintained asyncio client
does SASL and ``stats`` both (aiomcache has no SASL, emcache's SASL is Linux-only and
its stats are per command), and the work is two small request/response exchanges.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass

REQUEST_MAGIC = 0x80
RESPONSE_MAGIC = 0x81
HEADER = struct.Struct(">BBHBBHIIQ")
"""magic, opcode, key length, extras length, data type, vbucket/status, body length,
opaque, cas (memcached ``doc/protocol-binary.xml``)."""

OP_STAT = 0x10
OP_SASL_LIST_MECHS = 0x20
OP_SASL_AUTH = 0x21

STATUS_OK = 0x0000
STATUS_AUTH_ERROR = 0x0020
STATUS_AUTH_CONTINUE = 0x0021
STATUS_UNKNOWN_COMMAND = 0x0081

MAX_STATS = 10_000
MAX_BODY = 1024 * 1024


class MemcachedError(Exception):
    """The server answered with an error."""


class AuthenticationError(MemcachedError):
    """SASL authentication failed or is not offered."""


@dataclass(frozen=True, slots=True)
class Packet:
    opcode: int
    status: int
    opaque: int
    key: bytes
    value: bytes


def encode_request(opcode: int, key: bytes = b"", value: bytes = b"", opaque: int = 0) -> bytes:
    body = key + value
    header = HEADER.pack(REQUEST_MAGIC, opcode, len(key), 0, 0, 0, len(body), opaque, 0)
    return header + body


def sasl_plain(username: str, password: str) -> bytes:
    """The PLAIN initial response: authzid NUL authcid NUL password (RFC 4616)."""
    return b"\0" + username.encode() + b"\0" + password.encode()


async def read_packet(reader: asyncio.StreamReader) -> Packet:
    header = await reader.readexactly(HEADER.size)
    magic, opcode, key_len, extras_len, _, status, body_len, opaque, _ = HEADER.unpack(header)
    if magic != RESPONSE_MAGIC:
        raise MemcachedError(f"not a memcached binary response (magic 0x{magic:02x})")
    if body_len > MAX_BODY or key_len + extras_len > body_len:
        raise MemcachedError(f"malformed binary response (body length {body_len})")
    body = await reader.readexactly(body_len)
    key = body[extras_len : extras_len + key_len]
    return Packet(opcode, status, opaque, key, body[extras_len + key_len :])


def parse_text_stats(lines: list[bytes]) -> dict[str, str]:
    """``STAT name value`` lines (values may contain spaces) -> ``{name: value}``."""
    out: dict[str, str] = {}
    for line in lines:
        parts = line.decode(errors="replace").rstrip("\r\n").split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    return out


class MemcachedConnection:
    """One connection to one server; authenticates once when credentials are given."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._connect_timeout = connect_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._opaque = 0

    @property
    def binary(self) -> bool:
        return self._username is not None

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        await self.close()
        async with asyncio.timeout(self._connect_timeout):
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            if self.binary:
                await self._authenticate()

    async def _request(self, opcode: int, key: bytes = b"", value: bytes = b"") -> int:
        assert self._writer is not None
        self._opaque = (self._opaque + 1) & 0xFFFFFFFF
        self._writer.write(encode_request(opcode, key, value, self._opaque))
        await self._writer.drain()
        return self._opaque

    async def _response(self, opaque: int) -> Packet:
        assert self._reader is not None
        packet = await read_packet(self._reader)
        if packet.opaque != opaque:
            raise MemcachedError("binary response out of order")
        return packet

    async def _authenticate(self) -> None:
        assert self._username is not None and self._password is not None
        reply = await self._response(await self._request(OP_SASL_LIST_MECHS))
        if reply.status == STATUS_UNKNOWN_COMMAND:
            raise AuthenticationError("server does not support SASL authentication")
        if reply.status != STATUS_OK:
            raise AuthenticationError(f"SASL mechanism list failed (status 0x{reply.status:04x})")
        mechanisms = reply.value.decode(errors="replace").split()
        if "PLAIN" not in mechanisms:
            raise AuthenticationError(
                f"server offers SASL mechanisms {mechanisms}, the monitor needs PLAIN"
            )
        opaque = await self._request(
            OP_SASL_AUTH, b"PLAIN", sasl_plain(self._username, self._password)
        )
        reply = await self._response(opaque)
        if reply.status == STATUS_AUTH_ERROR:
            raise AuthenticationError(f"SASL authentication failed for user {self._username!r}")
        if reply.status != STATUS_OK:
            raise AuthenticationError(f"SASL authentication failed (status 0x{reply.status:04x})")

    async def stats(self) -> dict[str, str]:
        """The general-purpose statistics of the server."""
        if not self.connected:
            await self.connect()
        return await (self._binary_stats() if self.binary else self._text_stats())

    async def _text_stats(self) -> dict[str, str]:
        assert self._reader is not None and self._writer is not None
        self._writer.write(b"stats\r\n")
        await self._writer.drain()
        lines: list[bytes] = []
        while True:
            line = await self._reader.readuntil(b"\n")
            if line == b"END\r\n":
                return parse_text_stats(lines)
            if line.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
                raise MemcachedError(line.decode(errors="replace").strip())
            if len(lines) > MAX_STATS:
                raise MemcachedError("stats reply too long")
            lines.append(line)

    async def _binary_stats(self) -> dict[str, str]:
        opaque = await self._request(OP_STAT)
        out: dict[str, str] = {}
        while True:
            packet = await self._response(opaque)
            if packet.status == STATUS_AUTH_ERROR:
                raise AuthenticationError("not authenticated")
            if packet.status != STATUS_OK:
                raise MemcachedError(f"stat failed (status 0x{packet.status:04x})")
            if not packet.key:
                return out
            out[packet.key.decode(errors="replace")] = packet.value.decode(errors="replace")

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

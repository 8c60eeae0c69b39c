"""The Memcached collector against real memcached processes (text protocol and SASL)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from conftest import make_config
from servers import MemcachedServer, memcached_server, memcached_supports_sasl
from support import REQUIRE_ALL, free_port, require_binary

from collectors.memcached import MemcachedSource
from monitor.kernel.runner import JobRunner
from monitor.kernel.snapshot import Sample, find, value_of
from monitor.kernel.snapshot_store import SnapshotStore

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server() -> Iterator[MemcachedServer]:
    with memcached_server() as srv:
        yield srv


@pytest.fixture
def sasl_server() -> Iterator[MemcachedServer]:
    binary = require_binary("memcached")
    if not memcached_supports_sasl(binary):
        message = "this memcached build has no SASL; test_memcached_protocol covers the path"
        if REQUIRE_ALL:
            pytest.fail(message)
        pytest.skip(message)
    with memcached_server(username="alice", password="s3cret-pw") as srv:
        yield srv


def source_for(servers: str, **fields: Any) -> MemcachedSource:
    doc = {"name": "sessions", "servers": servers, **fields}
    config = make_config(targets={"memcached": [doc]})
    return MemcachedSource(config.targets.memcached[0], config.interval)


@contextlib.asynccontextmanager
async def opened(src: MemcachedSource) -> AsyncIterator[MemcachedSource]:
    try:
        yield src
    finally:
        await src.close()


def text_command(srv: MemcachedServer, payload: bytes, replies: int) -> None:
    """Send text-protocol commands and read ``replies`` terminal lines (END/STORED)."""
    with socket.create_connection((srv.host, srv.port), timeout=5) as sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"END\r\n") + data.count(b"STORED\r\n") < replies:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {data!r}"
            data += chunk


def lookups(srv: MemcachedServer, hits: int, misses: int) -> None:
    text_command(srv, b"set present 0 0 1\r\nx\r\n", 1)
    gets = b"get present\r\n" * hits + b"".join(b"get absent%d\r\n" % i for i in range(misses))
    text_command(srv, gets, hits + misses)


async def collect(src: MemcachedSource) -> Sequence[Sample]:
    return await src.jobs()[0].collect()


async def test_hit_ratio_is_exact_for_the_interval(server: MemcachedServer) -> None:
    async with opened(source_for(server.address)) as src:
        first = await collect(src)
        assert value_of(first, "memcached_up", target="sessions") == 1
        assert value_of(first, "memcached_cache_hit_ratio") is None
        lookups(server, hits=3, misses=1)
        second = await collect(src)
        assert value_of(second, "memcached_cache_hit_ratio") == pytest.approx(0.75)
        assert value_of(second, "memcached_get_hits_total") == 3
        assert value_of(second, "memcached_get_misses_total") == 1
        idle = await collect(src)
        assert value_of(idle, "memcached_cache_hit_ratio") is None  # no lookups: absent
    assert value_of(second, "memcached_memory_limit_bytes") == 64 * 2**20
    assert value_of(second, "memcached_items") == 1
    used = value_of(second, "memcached_memory_used_bytes")
    assert used is not None and used > 0
    assert value_of(second, "memcached_memory_used_ratio") == pytest.approx(used / 2**26)
    assert value_of(second, "memcached_evictions_total") == 0


async def test_restart_keeps_counters_monotonic_and_comes_back(server: MemcachedServer) -> None:
    runner = JobRunner(SnapshotStore())
    async with opened(source_for(server.address, timeout="3s")) as src:
        job = src.jobs()[0]
        await runner.run(job)
        lookups(server, hits=4, misses=4)
        before = await runner.run(job)
        assert value_of(before.samples, "memcached_get_hits_total") == 4

        server.stop()
        down = await runner.run(job)
        assert not down.ok and value_of(down.samples, "memcached_up") == 0

        server.start()
        lookups(server, hits=2, misses=0)
        after = await runner.run(job)
        assert after.ok, after.error
        assert value_of(after.samples, "memcached_get_hits_total") == 6
        assert value_of(after.samples, "memcached_get_misses_total") == 4
        assert value_of(after.samples, "memcached_cache_hit_ratio") == 1.0


async def test_restart_between_runs_needs_no_failed_run(server: MemcachedServer) -> None:
    async with opened(source_for(server.address)) as src:
        await collect(src)
        server.restart()
        assert value_of(await collect(src), "memcached_up") == 1


async def test_evictions_are_counted() -> None:
    with memcached_server(memory_mb=2) as srv:
        async with opened(source_for(srv.address)) as src:
            await collect(src)
            value = b"v" * 100_000
            payload = b"".join(
                b"set big%d 0 0 %d\r\n%s\r\n" % (i, len(value), value) for i in range(100)
            )
            text_command(srv, payload, 100)
            samples = await collect(src)
    evictions = value_of(samples, "memcached_evictions_total")
    assert evictions is not None and evictions > 0


async def test_one_server_down_of_two(server: MemcachedServer) -> None:
    dead = f"127.0.0.1:{free_port()}"
    async with opened(source_for(f"{server.address}, {dead}")) as src:
        lookups(server, hits=1, misses=0)
        samples = await collect(src)
        check = await src.check()
    assert value_of(samples, "memcached_up") == 0
    assert value_of(samples, "memcached_server_up", server=server.address) == 1
    assert value_of(samples, "memcached_server_up", server=dead) == 0
    assert value_of(samples, "memcached_get_hits_total") == 1
    assert not check.ok and f"{dead} FAILED" in check.detail


async def test_all_down_is_memcached_up_0() -> None:
    src = source_for(f"127.0.0.1:{free_port()}", timeout="2s")
    async with opened(src):
        snapshot = await JobRunner(SnapshotStore()).run(src.jobs()[0])
    assert not snapshot.ok
    assert [(s.name, s.value) for s in snapshot.samples] == [("memcached_up", 0.0)]


async def test_sasl_authenticates_over_the_binary_protocol(sasl_server: MemcachedServer) -> None:
    src = source_for(sasl_server.address, username="alice", password="s3cret-pw")
    async with opened(src):
        await collect(src)
        samples = await collect(src)
        check = await src.check()
    assert value_of(samples, "memcached_up") == 1
    assert value_of(samples, "memcached_memory_limit_bytes") == 64 * 2**20
    versions = [s.labels["version"] for s in find(samples, "memcached_version_info")]
    assert len(versions) == 1 and versions[0][0].isdigit()
    assert check.ok and "SASL as alice" in check.detail


async def test_sasl_hit_ratio_and_restart(sasl_server: MemcachedServer) -> None:
    src = source_for(sasl_server.address, username="alice", password="s3cret-pw")
    async with opened(src):
        await collect(src)
        sasl_server.restart()  # the kept connection is stale: reconnect and re-authenticate
        samples = await collect(src)
    assert value_of(samples, "memcached_up") == 1


async def test_sasl_wrong_password_is_a_clear_secret_free_failure(
    sasl_server: MemcachedServer,
) -> None:
    src = source_for(sasl_server.address, username="alice", password="not-the-pw-77")
    async with opened(src):
        snapshot = await JobRunner(SnapshotStore()).run(src.jobs()[0])
        check = await src.check()
    assert value_of(snapshot.samples, "memcached_up") == 0
    for text in (snapshot.error or "", check.detail):
        assert "SASL authentication failed" in text
        assert "not-the-pw-77" not in text


async def test_sasl_server_without_credentials_fails_clearly(sasl_server: MemcachedServer) -> None:
    async with opened(source_for(sasl_server.address, timeout="3s")) as src:
        snapshot = await asyncio.wait_for(JobRunner(SnapshotStore()).run(src.jobs()[0]), 10)
    assert value_of(snapshot.samples, "memcached_up") == 0

"""The Redis collector against real redis-server processes (plain, TLS, restarted)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
import redis as redis_lib
from conftest import make_config
from servers import RedisServer, redis_server

from collectors.redis_cache import RedisSource
from collectors.redis_cache.client import client_kwargs, tls_verify
from collectors.redis_cache.config import RedisTarget
from collectors.redis_cache.info import InfoReader
from monitor.kernel.runner import JobRunner
from monitor.kernel.snapshot import Sample, value_of
from monitor.kernel.snapshot_store import SnapshotStore

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@pytest.fixture
def tls_server() -> Iterator[RedisServer]:
    with redis_server(tls=True) as srv:
        yield srv


def source_for(url: str, **fields: Any) -> RedisSource:
    config = make_config(targets={"redis": [{"name": "cache", "url": url, **fields}]})
    return RedisSource(config.targets.redis[0], config.interval)


@contextlib.asynccontextmanager
async def opened(src: RedisSource) -> AsyncIterator[RedisSource]:
    try:
        yield src
    finally:
        await src.close()


def lookups(srv: RedisServer, hits: int, misses: int) -> None:
    """``hits`` GETs of an existing key and ``misses`` of absent ones, from a client."""
    client = redis_lib.Redis(host=srv.host, port=srv.port)
    try:
        client.set("present", "1")
        for _ in range(hits):
            assert client.get("present") is not None
        for i in range(misses):
            assert client.get(f"absent-{i}") is None
    finally:
        client.close()


async def collect(src: RedisSource) -> Sequence[Sample]:
    return await src.jobs()[0].collect()


async def test_hit_ratio_is_exact_for_the_interval(server: RedisServer) -> None:
    async with opened(source_for(server.url)) as src:
        first = await collect(src)
        assert value_of(first, "redis_up", target="cache") == 1
        assert value_of(first, "redis_cache_hit_ratio") is None  # no interval yet
        lookups(server, hits=6, misses=2)
        second = await collect(src)
        assert value_of(second, "redis_cache_hit_ratio") == pytest.approx(0.75)
        assert value_of(second, "redis_keyspace_hits_total") == 6
        assert value_of(second, "redis_keyspace_misses_total") == 2
        lookups(server, hits=1, misses=3)
        third = await collect(src)
        assert value_of(third, "redis_cache_hit_ratio") == pytest.approx(0.25)
        assert value_of(third, "redis_keyspace_hits_total") == 7
        assert value_of(third, "redis_db_keys", db="db0") == 1


async def test_hit_ratio_absent_without_lookups(server: RedisServer) -> None:
    async with opened(source_for(server.url)) as src:
        await collect(src)
        idle = await collect(src)
        assert value_of(idle, "redis_up") == 1
        assert value_of(idle, "redis_cache_hit_ratio") is None


async def test_restart_mid_run_keeps_counters_monotonic_and_comes_back(
    server: RedisServer,
) -> None:
    store = SnapshotStore()
    runner = JobRunner(store)
    async with opened(source_for(server.url, timeout="3s")) as src:
        job = src.jobs()[0]
        await runner.run(job)
        lookups(server, hits=10, misses=10)
        before = await runner.run(job)
        assert value_of(before.samples, "redis_keyspace_hits_total") == 10

        server.stop()
        down = await runner.run(job)
        assert not down.ok
        assert value_of(down.samples, "redis_up") == 0
        assert [s.name for s in down.samples] == ["redis_up"]

        server.start()  # new process, new run_id, counters from zero
        lookups(server, hits=3, misses=0)
        after = await runner.run(job)
        assert after.ok, after.error
        assert value_of(after.samples, "redis_up") == 1
        assert value_of(after.samples, "redis_keyspace_hits_total") == 13
        assert value_of(after.samples, "redis_keyspace_misses_total") == 10
        assert value_of(after.samples, "redis_cache_hit_ratio") == 1.0


async def test_restart_between_runs_reconnects_without_a_failed_run(server: RedisServer) -> None:
    async with opened(source_for(server.url)) as src:
        await collect(src)
        server.restart()
        samples = await collect(src)  # the stale pooled connection is retried once
        assert value_of(samples, "redis_up") == 1


async def test_resetstat_is_a_reset_not_a_negative_delta(server: RedisServer) -> None:
    async with opened(source_for(server.url)) as src:
        await collect(src)
        lookups(server, hits=20, misses=5)
        await collect(src)
        client = redis_lib.Redis(host=server.host, port=server.port)
        client.config_resetstat()
        client.close()
        lookups(server, hits=2, misses=2)
        samples = await collect(src)
        assert value_of(samples, "redis_keyspace_hits_total") == 22
        assert value_of(samples, "redis_keyspace_misses_total") == 7
        assert value_of(samples, "redis_cache_hit_ratio") == pytest.approx(0.5)


async def test_works_without_config_command_and_reads_maxmemory_from_info() -> None:
    args = ("--rename-command", "CONFIG", "", "--maxmemory", "10mb")
    with redis_server(args=args) as srv:
        client = redis_lib.Redis(host=srv.host, port=srv.port)
        with pytest.raises(redis_lib.ResponseError):
            client.config_get("maxmemory")  # like managed Redis
        client.close()
        async with opened(source_for(srv.url)) as src:
            samples = await collect(src)
            check = await src.check()
    assert value_of(samples, "redis_memory_max_bytes") == 10 * 2**20
    used = value_of(samples, "redis_memory_used_bytes")
    assert used is not None and used > 0
    assert value_of(samples, "redis_memory_used_ratio") == pytest.approx(used / (10 * 2**20))
    assert check.ok and "of 10.0 MiB" in check.detail


async def test_unlimited_memory_has_no_used_ratio(server: RedisServer) -> None:
    async with opened(source_for(server.url)) as src:
        samples = await collect(src)
    assert value_of(samples, "redis_memory_max_bytes") == 0
    assert value_of(samples, "redis_memory_used_ratio") is None
    assert value_of(samples, "redis_connected_clients") == 1


async def test_tls_with_the_servers_ca_verifies(tls_server: RedisServer) -> None:
    assert tls_server.tls is not None
    src = source_for(tls_server.url, tls_verify=True, tls_ca_file=str(tls_server.tls.cert))
    async with opened(src):
        samples = await collect(src)
        check = await src.check()
    assert value_of(samples, "redis_up") == 1
    assert check.ok and "TLS" in check.detail and "not verified" not in check.detail


async def test_tls_self_signed_fails_verification_by_default(
    tls_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DYNO", raising=False)
    async with opened(source_for(tls_server.url, timeout="3s")) as src:
        snapshot = await JobRunner(SnapshotStore()).run(src.jobs()[0])
        check = await src.check()
    assert value_of(snapshot.samples, "redis_up") == 0
    assert snapshot.error is not None and "certificate" in snapshot.error.lower()
    assert not check.ok


async def test_tls_verify_false_reads_self_signed(tls_server: RedisServer) -> None:
    async with opened(source_for(tls_server.url, tls_verify=False)) as src:
        samples = await collect(src)
        check = await src.check()
    assert value_of(samples, "redis_up") == 1
    assert "certificate not verified" in check.detail


async def test_on_heroku_rediss_skips_verification_by_default(
    tls_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNO", "worker.1")
    async with opened(source_for(tls_server.url)) as src:
        samples = await collect(src)
    assert value_of(samples, "redis_up") == 1


def test_tls_options_only_for_rediss() -> None:
    plain = RedisTarget(name="c", url="redis://h:6379")
    assert "ssl_cert_reqs" not in client_kwargs(plain, 5.0, {"DYNO": "web.1"})
    tls = RedisTarget(name="c", url="rediss://h:6380")
    assert tls_verify(tls, {}) is True
    assert tls_verify(tls, {"DYNO": "web.1"}) is False
    assert client_kwargs(tls, 5.0, {"DYNO": "web.1"})["ssl_cert_reqs"] == "none"
    pinned = RedisTarget(name="c", url="rediss://h:6380", tls_verify=True)
    assert tls_verify(pinned, {"DYNO": "web.1"}) is True
    assert "ssl_cert_reqs" not in client_kwargs(pinned, 5.0, {"DYNO": "web.1"})


async def test_wrong_password_is_a_clear_secret_free_failure() -> None:
    with redis_server(args=("--requirepass", "right-password")) as srv:
        url = f"redis://:wrong-password-42@{srv.host}:{srv.port}/0"
        async with opened(source_for(url)) as src:
            snapshot = await JobRunner(SnapshotStore()).run(src.jobs()[0])
            check = await src.check()
        good = f"redis://:right-password@{srv.host}:{srv.port}/0"
        async with opened(source_for(good)) as src:
            assert value_of(await collect(src), "redis_up") == 1
    assert value_of(snapshot.samples, "redis_up") == 0
    assert not check.ok
    for text in (snapshot.error or "", check.detail):
        assert "wrong-password-42" not in text
        assert "auth" in text.lower() or "password" in text.lower()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says anything."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


async def test_silent_server_times_out_as_down_not_a_hang() -> None:
    with silent_server() as port:
        src = source_for(f"redis://127.0.0.1:{port}/0", interval="2s", timeout="1s")
        async with opened(src):
            snapshot = await asyncio.wait_for(JobRunner(SnapshotStore()).run(src.jobs()[0]), 10)
    assert value_of(snapshot.samples, "redis_up") == 0
    assert not snapshot.ok


def test_info_parsing_tolerates_text_and_missing_fields() -> None:
    reader = InfoReader()
    samples = list(
        reader.samples(
            "c",
            {
                "redis_version": "7.2.4",
                "used_memory": "1024",
                "used_memory_human": "1.00K",
                "maxmemory": 0,
                "keyspace_hits": 5,
                "db0": "keys=3,expires=1,avg_ttl=0",
                "db12": {"keys": 2, "expires": 0},
                "dbx": "not a database",
            },
        )
    )
    assert value_of(samples, "redis_memory_used_bytes") == 1024
    assert value_of(samples, "redis_keyspace_misses_total") is None
    assert value_of(samples, "redis_db_keys", db="db0") == 3
    assert value_of(samples, "redis_db_keys_expiring", db="db0") == 1
    assert value_of(samples, "redis_db_keys", db="db12") == 2
    assert value_of(samples, "redis_version_info", version="7.2.4") == 1


def test_new_run_id_is_a_restart_even_when_counters_grew() -> None:
    reader = InfoReader()
    list(reader.samples("c", {"run_id": "a", "keyspace_hits": 100, "keyspace_misses": 0}))
    after = list(reader.samples("c", {"run_id": "b", "keyspace_hits": 150, "keyspace_misses": 50}))
    assert value_of(after, "redis_keyspace_hits_total") == 250
    assert value_of(after, "redis_keyspace_misses_total") == 50
    assert value_of(after, "redis_cache_hit_ratio") == pytest.approx(0.75)

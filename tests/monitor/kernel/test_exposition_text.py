"""The fast text rendering of the store is byte for byte prometheus_client's."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from monitor.kernel.exposition import Exposition
from monitor.kernel.snapshot import Sample, Snapshot, counter, gauge, info
from monitor.kernel.snapshot_store import SnapshotStore

LAG = gauge("y_lag_seconds", 'lag with "quotes" and \\ backslash\nand a newline', "zeta", "alpha")
CALLS = counter("y_calls_total", "calls", "datname", "queryid")
TEXT = info("y_query_info", "query", "queryid", "query")
VALUES = [0.0, -0.0, 1.0, -2.5, 1e-9, 123456.0, 1234567.0, 1e22, 2.0**63, math.inf, -math.inf,
          math.nan, 0.1 + 0.2, 7e6 + 0.5]  # fmt: skip


class Extra(Collector):
    def collect(self):  # type: ignore[no-untyped-def]
        family = GaugeMetricFamily("z_extra", "from a component", labels=["k"])
        family.add_metric(["v"], 3.0)
        yield family


def put(store: SnapshotStore, collector: str, target: str, samples: list[Sample]) -> None:
    store.put(Snapshot(collector, target, tuple(samples), True, 1.7e9, 0.01), "success", 10.0)


def test_same_bytes_as_generate_latest() -> None:
    store = SnapshotStore()
    exposition = Exposition(store, [Extra()])
    a = [LAG(v, f"z{i}", 'a"b\\c\nd', target="a") for i, v in enumerate(VALUES)]
    a += [CALLS(i * 1.5, "app", str(-(10**18) + i), target="a") for i in range(50)]
    a += [TEXT(1, "42", "SELECT 'x' FROM \"t\"", target="a")]
    a += [LAG(99, "z0", 'a"b\\c\nd', target="a")]  # duplicate within a snapshot
    put(store, "one", "a", a)
    b = [CALLS(5, "app", "7", target="b"), LAG(1, "q", "r", target="b")]
    put(store, "two", "b", b)
    c = [LAG(2, "q", "r", target="b"), LAG(3, "q2", "r", target="b")]  # duplicate across
    put(store, "three", "b", c)
    assert exposition.render() == generate_latest(exposition.registry)
    # a changed snapshot is rebuilt, unchanged ones come from the cache
    put(store, "two", "b", [CALLS(6, "app", "7", target="b")])
    assert exposition.render() == generate_latest(exposition.registry)
    assert b'y_calls_total{datname="app",queryid="7",target="b"} 6.0' in exposition.render()
    # a collector handing back the same Sample objects (and one new value) is rendered right
    a[3] = LAG(42.0, "z3", 'a"b\\c\nd', target="a")
    put(store, "one", "a", a)
    assert exposition.render() == generate_latest(exposition.registry)
    assert b"y_lag_seconds{alpha=" in exposition.render()
    assert b'zeta="z3"} 42.0' in exposition.render()


async def test_text_is_rendered_after_a_store_change_once_scraped() -> None:
    store = SnapshotStore()
    exposition = Exposition(store)
    builds: list[bool] = []
    original = exposition._store_text.render

    def counting(snapshots: Sequence[Snapshot], openmetrics: bool = False) -> str:
        builds.append(openmetrics)
        return original(snapshots, openmetrics)

    exposition._store_text.render = counting  # type: ignore[method-assign]
    put(store, "one", "a", [LAG(1, "z", "a", target="a")])
    await exposition.settled()
    assert builds == []  # nobody scraped yet: nothing is rendered ahead
    await exposition.render_async()
    assert builds == [False]
    put(store, "one", "a", [LAG(2, "z", "a", target="a")])
    put(store, "two", "b", [LAG(3, "z", "a", target="b")])
    await exposition.settled()
    assert builds == [False, False]  # one render for both changes, ahead of the scrape
    body = await exposition.render_async()
    assert builds == [False, False]
    assert b'y_lag_seconds{alpha="a",target="b",zeta="z"} 3.0' in body
    # once OpenMetrics was asked for, both formats are rendered ahead, the latest first
    await exposition.render_async(openmetrics=True)
    put(store, "one", "a", [LAG(4, "z", "a", target="a")])
    await exposition.settled()
    assert builds[-2:] == [True, False]
    assert (await exposition.render_async(openmetrics=True)).endswith(b"# EOF\n")
    assert len(builds) == 5


async def test_gzip_is_compressed_ahead_for_a_scraper_that_asked_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scraper that asks for gzip finds the next body compressed before it asks."""
    import gzip

    import monitor.kernel.exposition as exposition_module

    store = SnapshotStore()
    exposition = Exposition(store, render_ahead_delay=0.01)
    compressions: list[int] = []
    compress = gzip.compress

    def counting(data: bytes, level: int = 9) -> bytes:
        compressions.append(len(data))
        return compress(data, level)

    monkeypatch.setattr(exposition_module.gzip, "compress", counting)
    put(store, "one", "a", [LAG(1, "z", "a", target="a")])
    first = await exposition.render_async(openmetrics=True, compressed=True)
    assert b"# EOF" in gzip.decompress(first) and len(compressions) == 1
    put(store, "one", "a", [LAG(2, "z", "a", target="a")])
    await exposition.settled()
    assert len(compressions) == 2  # compressed ahead, after the render ahead
    second = await exposition.render_async(openmetrics=True, compressed=True)
    assert len(compressions) == 2  # the scrape found it ready
    assert b'y_lag_seconds{alpha="a",target="a",zeta="z"} 2.0' in gzip.decompress(second)


async def test_a_gzip_scrape_renders_and_compresses_in_one_worker_thread_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scrape racing a fresh collection waits for one hop to a worker thread, not one
    for the render and another for its gzip; the components' families are formatted
    there too, with the store's samples."""
    import asyncio
    import gzip

    import monitor.kernel.exposition as exposition_module

    store = SnapshotStore()
    exposition = Exposition(store, [Extra()])
    hops: list[str] = []
    to_thread = asyncio.to_thread

    async def counting(func, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        hops.append(getattr(func, "__name__", repr(func)))
        return await to_thread(func, *args, **kwargs)

    monkeypatch.setattr(exposition_module.asyncio, "to_thread", counting)
    put(store, "one", "a", [LAG(1, "z", "a", target="a")])
    body = gzip.decompress(await exposition.render_async(openmetrics=True, compressed=True))
    assert hops == ["build"]
    assert body == exposition.render(openmetrics=True)
    assert b'z_extra{k="v"} 3.0\n# EOF\n' in body
    # the same body uncompressed is the cached one: no hop at all
    assert await exposition.render_async(openmetrics=True) == body and hops == ["build"]


async def test_render_ahead_waits_for_a_quiet_moment_but_not_forever() -> None:
    """A burst of changes (a fleet's jobs finishing over a few seconds) is rendered once,
    after it; changes that never pause are rendered at least every max wait."""
    import asyncio

    store = SnapshotStore()
    exposition = Exposition(store, render_ahead_delay=0.2, render_ahead_max_wait=1.0)
    builds: list[float] = []
    original = exposition._store_text.render

    def counting(snapshots: Sequence[Snapshot], openmetrics: bool = False) -> str:
        builds.append(openmetrics)  # in the worker thread
        return original(snapshots, openmetrics)

    await exposition.render_async()  # scraped once: rendered ahead from now on
    exposition._store_text.render = counting  # type: ignore[method-assign]
    for i in range(25):  # 0.5 s of changes, 20 ms apart
        put(store, "one", "a", [LAG(i, "z", "a", target="a")])
        await asyncio.sleep(0.02)
    assert builds == []  # not while the burst goes on
    await exposition.settled()
    assert len(builds) == 1
    started = asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - started < 2.5:  # changes that never pause
        put(store, "one", "a", [LAG(started, "z", "a", target="a")])
        await asyncio.sleep(0.02)
    assert 2 <= len(builds) <= 4  # rendered about once a second all the same

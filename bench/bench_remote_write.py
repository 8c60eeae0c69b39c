"""What the remote_write push of 10,000 series every 15 s costs, and how big it is.

It builds a store of 10,000 series shaped like pg_stat_statements: 2 targets, 1,000
queryids and 5 counters each, with target, datname and queryid labels, plus job and
instance. It then pushes that to a receiver in another process, so the receiver's CPU
is not counted. The receiver is a real Prometheus with ``--web.enable-remote-write-receiver``
when it is installed; otherwise a minimal HTTP server answers 204. The script prints:

* the CPU time (process time, all threads) of one push cycle: reading the registry,
  queueing, encoding, snappy and the HTTP requests. It also prints that as a share of
  one core at a 15 s interval (the target: under 5 %);
* the same, measured live: the component's own loops run for ``LIVE_SECONDS`` at 15 s;
* the request size per sample, steady state and when catching up after an outage (with
  a ``max_samples_per_send`` above the series count, one request carries several points
  per series and its labels only once);
* the memory per queued sample (tracemalloc).

Run it with ``uv run python bench/bench_remote_write.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx

from monitor.app.config import validate
from monitor.app.demo.testservers import free_port
from monitor.kernel.component import Context
from monitor.kernel.exposition import Exposition
from monitor.kernel.remote_write.component import RemoteWriteComponent
from monitor.kernel.snapshot import Snapshot, counter
from monitor.kernel.snapshot_store import SnapshotStore

SERIES = 10_000
INTERVAL = 15.0
CYCLES = 20
LIVE_SECONDS = 45.0
COUNTERS = [
    counter(f"pg_stat_statements_{name}_total", name, "datname", "queryid")
    for name in ("calls", "exec_seconds", "rows", "shared_blks_hit", "shared_blks_read")
]

RECEIVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@contextlib.contextmanager
def receiver() -> Iterator[tuple[str, str]]:
    """(write URL, what it is), in a child process."""
    port = free_port()
    binary = shutil.which("prometheus")
    workdir = Path(tempfile.mkdtemp(prefix="bench-remote-write-"))
    if binary:
        (workdir / "p.yml").write_text("global: {scrape_interval: 15s}\n")
        argv = [
            binary,
            f"--config.file={workdir / 'p.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ]
        what = "Prometheus (remote-write receiver)"
    else:
        argv = [sys.executable, "-c", RECEIVER, str(port)]
        what = "a minimal HTTP receiver (prometheus not installed)"
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if binary is None or httpx.get(f"http://127.0.0.1:{port}/-/ready").is_success:
                    httpx.post(f"http://127.0.0.1:{port}/api/v1/write", content=b"")
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/api/v1/write", what
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def store_with_series(tick: int = 0) -> SnapshotStore:
    store = SnapshotStore()
    fill(store, tick)
    return store


def fill(store: SnapshotStore, tick: int) -> None:
    per_target = SERIES // 2 // len(COUNTERS)
    for target in ("primary", "follower"):
        samples = [
            spec(tick * 10 + q, "app", str(1_000_000_007 * (q + 1)), target=target)
            for q in range(per_target)
            for spec in COUNTERS
        ]
        store.put(
            Snapshot("statements", target, tuple(samples), True, time.time(), 0.01),
            "success",
            INTERVAL,
        )


def component(url: str, store: SnapshotStore, **remote: object) -> RemoteWriteComponent:
    config = validate(
        {
            "http": {"listen": "127.0.0.1:0"},
            "remote_write": {"url": url, "interval": f"{INTERVAL:g}s", **remote},
        },
        environ={},
    )
    assert config.remote_write is not None
    exposition = Exposition(store)
    comp = RemoteWriteComponent(
        Context(store, exposition, config.http, config.interval), config.remote_write
    )
    for collector in comp.collectors():
        exposition.register(collector)
    return comp


async def drain(comp: RemoteWriteComponent) -> tuple[int, int]:
    """Push everything queued; (requests, compressed bytes)."""
    requests = size = 0
    while comp.queue.take(comp.config.max_samples_per_send) is not None:
        body_before = comp.stats.sent_bytes
        result = await comp.push_one()
        assert result is not None and result.outcome.value == "sent", result
        requests += 1
        size += comp.stats.sent_bytes - body_before
    return requests, size


async def cycles(url: str) -> None:
    store = store_with_series()
    comp = component(url, store, labels={"job": "bench-cycles"})
    comp.collect()
    await drain(comp)  # warm up: connection, interned keys, metadata
    cpu: list[float] = []
    sizes: list[int] = []
    samples = 0
    for tick in range(1, CYCLES + 1):
        fill(store, tick)  # new values, as collectors would store them
        gc.collect()
        started = time.process_time()
        comp.collect()
        queued = len(comp.queue)
        _, size = await drain(comp)
        cpu.append(time.process_time() - started)
        sizes.append(size)
        samples = queued
    median = statistics.median(cpu)
    print(f"series per push              {samples}")
    print(
        f"CPU per push cycle           median {median * 1000:6.1f} ms   "
        f"max {max(cpu) * 1000:6.1f} ms"
    )
    print(
        f"share of one core at {INTERVAL:g} s    {median / INTERVAL * 100:6.2f} %  (target < 5 %)"
    )
    per_sample = statistics.median(sizes) / samples
    print(f"request bytes per sample     {per_sample:6.1f} B (snappy), steady state")
    await comp.client.aclose()


async def catch_up(url: str, per_send: int) -> None:
    """After an outage: 10 queued collections of every series go out, oldest first."""
    store = store_with_series()
    comp = component(
        url,
        store,
        max_samples_per_send=per_send,
        labels={"job": f"bench-catchup-{per_send}"},
    )
    start = time.time() - 150
    for tick in range(10):
        fill(store, tick)
        comp._clock = lambda t=tick: start + t * 15  # the outage's collection times
        comp.collect()
    queued = len(comp.queue)
    chunk = comp.queue.take(comp.config.max_samples_per_send)
    assert chunk is not None
    points_per_series = chunk.samples / len(chunk.series)
    requests, size = await drain(comp)
    print(
        f"request bytes per sample     {size / queued:6.1f} B (snappy), catching up with "
        f"max_samples_per_send={per_send}: {points_per_series:.0f} point(s) per series "
        f"per request, {requests} requests"
    )
    await comp.client.aclose()


def queue_memory() -> None:
    store = store_with_series()
    comp = component("http://127.0.0.1:9/", store, max_queue_samples=1_000_000)
    comp.collect()  # the interned keys exist before we measure
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for tick in range(1, 11):
        fill(store, tick)
        comp.collect()
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # the refill allocates new snapshots too: count only what the queue holds on to
    queued = len(comp.queue)
    del store
    print(f"memory per queued sample     {used / queued:6.1f} B (upper bound, incl. new snapshots)")
    print(f"  500,000 queued samples     {used / queued * 500_000 / 1e6:6.1f} MB")


async def live(url: str) -> None:
    store = store_with_series()
    comp = component(url, store, labels={"job": "bench-live"})
    await comp.start()
    started_cpu, started = time.process_time(), time.monotonic()
    await asyncio.sleep(LIVE_SECONDS)  # the component's loops do the work meanwhile
    cpu = time.process_time() - started_cpu
    elapsed = time.monotonic() - started
    await comp.stop()
    pushed = comp.stats.samples["sent"]
    print(
        f"live, {elapsed:.0f} s at {INTERVAL:g} s       {cpu / elapsed * 100:6.2f} % of one core "
        f"({pushed} samples pushed, {comp.stats.samples['rejected']} rejected, "
        f"{comp.stats.dropped} dropped)"
    )


def main() -> None:
    with receiver() as (url, what):
        print(f"receiver: {what}")
        asyncio.run(cycles(url))
        asyncio.run(catch_up(url, 5_000))
        asyncio.run(catch_up(url, 50_000))
        queue_memory()
        asyncio.run(live(url))


if __name__ == "__main__":
    main()

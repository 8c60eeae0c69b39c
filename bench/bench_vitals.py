"""Beacon ingestion on POST /vitals: rate and latency on one core, memory over 1M beacons.

Three measurements, printed as figures (never asserted):

1. ``handler``: the endpoint's own work (rate limit, origin, body, JSON, validation,
   routing, de-duplication, histograms) called in-process on ASGI requests, one core;
   per-beacon latency percentiles.
2. ``memory``: RSS every 100,000 of 1,000,000 beacons with unique ids through the same
   handler; flat once ``max_tracked_ids`` ids are remembered.
3. ``http``: a real daemon (``monitor run``) pinned to one core, driven from the other
   core at a fixed offered rate over keep-alive connections; achieved rate and
   request-to-response latency percentiles.

Usage: ``uv run python bench/bench_vitals.py [--beacons 1000000] [--rate 5000] [--seconds 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.requests import Request

from collectors.rum import RumComponent
from monitor.app.config import validate
from monitor.kernel.exposition import Exposition
from monitor.kernel.snapshot_store import SnapshotStore

ORIGIN = "https://shop.example.com"
ROUTES = ["/", "/products/:id", "/cart", "/docs/*rest", "/account/:section"]
PATHS = ["/", "/products/17", "/products/942", "/cart", "/docs/setup/heroku", "/blog/hello"]
RUM = {
    "allowed_origins": [ORIGIN],
    "routes": ROUTES,
    "rate_limit": {"per_second": 1_000_000, "burst": 1_000_000},
}


def beacon(i: int, rng: random.Random) -> bytes:
    """What web-vitals sends: mostly one metric per beacon, sometimes a batch of three."""
    names = [("LCP", 2500, 4000, 6000), ("CLS", 0.1, 0.25, 0.5), ("INP", 200, 500, 900)]
    names += [("FCP", 1800, 3000, 4000), ("TTFB", 800, 1800, 2500)]
    count = 3 if i % 5 == 0 else 1
    out = []
    for k in range(count):
        name, good, poor, top = names[(i + k) % len(names)]
        value = rng.uniform(0, top)
        if name != "CLS":
            value = round(value, 1)
        rating = "good" if value <= good else "needs-improvement" if value <= poor else "poor"
        out.append(
            {
                "name": name,
                "value": value,
                "rating": rating,
                "delta": value,
                "id": f"v5-{1_700_000_000_000 + i}-{1_000_000_000_000 + k}",
                "navigationType": "navigate",
                "path": PATHS[i % len(PATHS)],
            }
        )
    return json.dumps(out[0] if count == 1 else out).encode()


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def make_request(body: bytes) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/vitals",
        "headers": [
            (b"origin", ORIGIN.encode()),
            (b"content-type", b"text/plain;charset=UTF-8"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("203.0.113.9", 50000),
        "query_string": b"",
    }
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def bench_handler(total: int, memory_every: int) -> None:
    config = validate({"targets": {"rum": RUM}}, environ={})
    assert config.targets.rum is not None
    component = RumComponent(config.targets.rum, Exposition(SnapshotStore()), config.interval)
    handle = component.endpoint.handle
    rng = random.Random(1)
    latencies = array("d", bytes(8 * total))  # preallocated: not part of the memory figures
    memory: list[tuple[int, float, int, int, int]] = []
    start = time.perf_counter()
    for i in range(total):
        body = beacon(i, rng)  # unique ids throughout: nothing is a duplicate
        t0 = time.perf_counter()
        response = await handle(make_request(body))
        latencies[i] = time.perf_counter() - t0
        if response.status_code != 204:
            raise SystemExit(f"beacon {i} got {response.status_code}: {response.body!r}")
        if (i + 1) % memory_every == 0:
            component.flush()
            agg = component.aggregator
            memory.append((i + 1, rss_mib(), agg.tracked, agg.pending, sys.getallocatedblocks()))
    elapsed = time.perf_counter() - start
    busy = sum(latencies)
    ordered = sorted(latencies)
    print(
        f"handler: {total:,} beacons, {busy:.1f} s in the handler = {total / busy:,.0f} "
        f"beacons/s on one core ({elapsed:.1f} s with generating the beacons)"
    )
    print(
        "handler latency: p50 {:.3f} ms, p99 {:.3f} ms, p99.9 {:.3f} ms, max {:.3f} ms".format(
            *(percentile(ordered, q) * 1000 for q in (0.5, 0.99, 0.999, 1.0))
        )
    )
    print("memory: beacons -> RSS MiB, Python objects allocated (ids remembered, CLS/INP pending)")
    for n, rss, tracked, pending, blocks in memory:
        print(f"  {n:>9,} -> {rss:7.1f} MiB, {blocks:>9,} blocks ({tracked:,}, {pending:,})")
    after_warmup = [rss for n, rss, *_ in memory if n >= total // 5]
    if after_warmup:
        growth = after_warmup[-1] - after_warmup[0]
        print(f"memory growth after {total // 5:,} beacons: {growth:+.1f} MiB")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(port: int, deadline: float) -> None:
    """Until /healthz says the scheduler runs, then a second for start-up work to end."""
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: monitor\r\nConnection: close\r\n\r\n")
            answer = await reader.read()
            writer.close()
            if answer.startswith(b"HTTP/1.1 200"):
                await asyncio.sleep(1.0)
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the daemon did not become ready")
        await asyncio.sleep(0.1)


def request_bytes(body: bytes) -> bytes:
    return (
        b"POST /vitals HTTP/1.1\r\nHost: monitor\r\nOrigin: " + ORIGIN.encode() + b"\r\n"
        b"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


async def connection(
    port: int,
    schedule: list[float],
    payloads: list[bytes],
    latencies: list[float],
    errors: list[str],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    loop = asyncio.get_running_loop()
    for due, payload in zip(schedule, payloads, strict=True):
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        _, found, rest = head.lower().partition(b"content-length:")
        if found:
            await reader.readexactly(int(rest.split(b"\r\n")[0]))
        # latency from when the request was due, so a late sender counts against us
        latencies.append(loop.time() - due)
        status = head.split(b" ", 2)[1]
        if status != b"204":
            errors.append(status.decode())
    writer.close()


async def bench_http(rate: int, seconds: float, connections: int) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "monitor.yaml"
        config.write_text(
            json.dumps(
                {
                    "http": {"listen": f"127.0.0.1:{port}"},
                    "state": {"url": f"sqlite:///{tmp}/state.db"},
                    "targets": {"rum": RUM},
                }
            )
        )
        cpus = sorted(os.sched_getaffinity(0))
        server_cpu, client_cpus = cpus[0], set(cpus[1:]) or {cpus[0]}
        server = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, {server_cpu}),
        )
        os.sched_setaffinity(0, client_cpus)
        try:
            await wait_ready(port, time.monotonic() + 20)
            rng = random.Random(2)
            total = int(rate * seconds)
            payloads = [request_bytes(beacon(i, rng)) for i in range(total)]
            loop = asyncio.get_running_loop()
            start = loop.time() + 0.5
            schedule = [start + i / rate for i in range(total)]
            latencies: list[float] = []
            errors: list[str] = []
            cpu_before = cpu_seconds(server.pid)
            t0 = time.perf_counter()
            await asyncio.gather(
                *(
                    connection(
                        port, schedule[c::connections], payloads[c::connections], latencies, errors
                    )
                    for c in range(connections)
                )
            )
            elapsed = time.perf_counter() - t0 - 0.5
            busy = (cpu_seconds(server.pid) - cpu_before) / elapsed
        finally:
            server.terminate()
            server.wait(15)
    latencies.sort()
    print(
        f"http: offered {rate:,}/s for {seconds:g} s over {connections} connections, server on "
        f"CPU {server_cpu}: {len(latencies):,} answered in {elapsed:.1f} s = "
        f"{len(latencies) / elapsed:,.0f} beacons/s, {len(errors)} errors; "
        f"server CPU {busy:.0%} of one core"
    )
    print(
        "http latency: p50 {:.2f} ms, p99 {:.2f} ms, p99.9 {:.2f} ms, max {:.2f} ms".format(
            *(percentile(latencies, q) * 1000 for q in (0.5, 0.99, 0.999, 1.0))
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--beacons", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--only", choices=["http", "handler"])
    args = parser.parse_args()
    if args.only != "handler":
        asyncio.run(bench_http(args.rate, args.seconds, args.connections))
    if args.only != "http":
        asyncio.run(bench_handler(args.beacons, max(1, args.beacons // 10)))


if __name__ == "__main__":
    main()

"""Event-loop lag of a busy daemon: scraped every 15 s, 5,000 beacons/s, collectors running.

Starts a throw-away PostgreSQL with STATEMENTS distinct statements, Redis and Memcached
(when installed), and ``monitor run`` (a subprocess) watching them at a 15 s interval,
with browser beacons (``rum``) and an HTTP probe. A scraper asks for /metrics every 15 s
with Prometheus 2.x's headers (OpenMetrics, gzip). Two phases of SECONDS each, measured
in the same run:

1. ``idle``: collectors and scrapes only;
2. ``beacons``: the same plus RATE beacons/s over 50 keep-alive connections.

For each phase it prints the p99 of ``monitor_event_loop_lag_seconds`` (the smallest
bucket bound holding 99% of the phase's ticks; the histogram reaches /metrics with the
next render, so each reading waits for one), the scrape latencies and the daemon's CPU.

``uv run python bench/bench_loop_lag.py`` (quick: 30 s phases); ``--full``: 120 s phases.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_fleet import all_ran, lag_buckets, lag_p99
from bench_postgres import generate
from bench_vitals import RUM, beacon, connection, cpu_seconds, request_bytes

from monitor.app.demo.testbed import TestBed
from monitor.app.demo.testservers import free_port, memcached_server, redis_server

PROMETHEUS_2 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
RATE = 5000
CONNECTIONS = 50
SCRAPE_EVERY = 15.0


def scrape(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        started = time.perf_counter()
        conn.request("GET", "/metrics", headers={"Accept": PROMETHEUS_2, "Accept-Encoding": "gzip"})
        conn.getresponse().read()
        return (time.perf_counter() - started) * 1000
    finally:
        conn.close()


@contextlib.contextmanager
def scraping(port: int) -> Iterator[list[float]]:
    """A Prometheus-like scraper every SCRAPE_EVERY seconds; yields its latencies."""
    stop = threading.Event()
    latencies: list[float] = []

    def run() -> None:
        while not stop.is_set():
            latencies.append(scrape(port))
            stop.wait(SCRAPE_EVERY)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield latencies
    finally:
        stop.set()
        thread.join(30)


def fresh_lag(port: int, previous: dict[float, float] | None = None) -> dict[float, float]:
    """The lag buckets once a render newer than ``previous`` shows them."""
    deadline = time.monotonic() + 30
    while True:
        buckets = lag_buckets(port)
        if previous is None or buckets.get(float("inf")) != previous.get(float("inf")):
            return buckets
        if time.monotonic() > deadline:
            return buckets
        time.sleep(0.2)


def payloads_for(seconds: float) -> list[bytes]:
    rng = random.Random(3)
    return [request_bytes(beacon(i, rng)) for i in range(int(RATE * seconds))]


async def send_beacons(port: int, payloads: list[bytes]) -> tuple[int, int]:
    total = len(payloads)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    schedule = [start + i / RATE for i in range(total)]
    latencies: list[float] = []
    errors: list[str] = []
    await asyncio.gather(
        *(
            connection(port, schedule[c::CONNECTIONS], payloads[c::CONNECTIONS], latencies, errors)
            for c in range(CONNECTIONS)
        )
    )
    return len(latencies), len(errors)


def phase(port: int, pid: int, seconds: float, beacons: bool) -> dict[str, Any]:
    payloads = payloads_for(seconds) if beacons else []
    before = fresh_lag(port)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    sent = errors = 0
    with scraping(port) as scrapes:
        if beacons:
            sent, errors = asyncio.run(send_beacons(port, payloads))
        else:
            time.sleep(seconds)
    elapsed = time.monotonic() - t0
    cpu = (cpu_seconds(pid) - cpu0) / elapsed
    p99, ticks = lag_p99(before, fresh_lag(port, before))
    return {
        "p99": p99,
        "ticks": ticks,
        "cpu": cpu,
        "scrapes": scrapes,
        "rate": sent / elapsed,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="120 s phases")
    args = parser.parse_args()
    seconds = 120.0 if args.full else 30.0
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp_name:
        bed = stack.enter_context(TestBed(replica=False))
        bed.primary.append_conf({"pg_stat_statements.max": 10000})
        bed.primary.stop()
        bed.primary.start()
        generate(bed)
        port = free_port()
        targets: dict[str, Any] = {
            "postgres": [{"name": "primary", "url": bed.primary.dsn()}],
            "http": [{"name": "self", "url": f"http://127.0.0.1:{port}/healthz"}],
            "rum": RUM,
        }
        if binary := shutil.which("redis-server"):
            targets["redis"] = [
                {"name": "cache", "url": stack.enter_context(redis_server(binary)).url}
            ]
        if binary := shutil.which("memcached"):
            server = stack.enter_context(memcached_server(binary))
            targets["memcached"] = [{"name": "mc", "servers": server.address}]
        config = {
            "interval": "15s",
            "http": {"listen": f"127.0.0.1:{port}"},
            "state": {"url": "sqlite:///:memory:"},
            "targets": targets,
        }
        path = Path(tmp_name) / "lag.yaml"
        path.write_text(yaml.safe_dump(config))
        jobs = sum(len(v) for k, v in targets.items() if k != "rum")
        argv = [sys.executable, "-m", "monitor", "run", "-c", str(path)]
        env = {**os.environ, "LOG_FORMAT": "console", "LOG_LEVEL": "warning"}
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not all_ran(port, jobs):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the daemon did not run every collector")
                time.sleep(0.2)
            print(f"{seconds:g} s per phase, scraped every {SCRAPE_EVERY:g} s")
            results = {
                "idle": phase(port, proc.pid, seconds, beacons=False),
                "beacons": phase(port, proc.pid, seconds, beacons=True),
            }
        finally:
            proc.terminate()
            proc.wait(20)
    for name, r in results.items():
        scrapes = r["scrapes"]
        extra = f", {r['rate']:,.0f} beacons/s ({r['errors']} errors)" if name == "beacons" else ""
        print(
            f"  {name:<8} loop lag p99 <= {r['p99'] * 1000:g} ms ({r['ticks']} ticks)   "
            f"scrape median {statistics.median(scrapes):.1f} ms over {len(scrapes)}   "
            f"CPU {r['cpu']:.0%} of a core{extra}"
        )
    ratio = results["beacons"]["p99"] / results["idle"]["p99"]
    verdict = "yes" if results["beacons"]["p99"] <= 0.02 else "NO"
    print(f"targets: p99 < 20 ms with beacons: {verdict} ({ratio:.1f}x the idle p99)")


if __name__ == "__main__":
    main()

"""/metrics as real scrapers ask for it: each client's Accept header, after a fresh collection.

Starts a throw-away PostgreSQL with STATEMENTS distinct statements in pg_stat_statements
(as bench_postgres.py does), a daemon watching it, and for the default top N and for every
statement exported, scrapes /metrics with the Accept header of Prometheus 2.x, Prometheus
3.x, Grafana Alloy, vmagent and none, each scrape right after a statements collection was
stored, in two ways: right away, racing the render ahead that the collection started,
and once that render (and its gzip) has finished. Prometheus scrapes at a fixed phase of
its interval, unrelated to the collection's: at a 15 s interval the render ahead (1 s
after the change, then a few to tens of ms) has finished for ~93% of scrapes, and the
rest race it. Prints, per client and way, the median and p99 latency with and without
gzip, the ratio to the text path (no Accept header) measured in the same run, and
prometheus-postgres-exporter's latency exporting the same statements, also in this run
(it queries the database on every scrape).

The daemon runs in this process on its own event loop in a thread (a real Daemon, HTTP
on a loopback port); each scrape follows a statements collection run to completion on
that loop (the job alone, as bench_postgres.py does, without the alert evaluation that
follows a scheduled run), so the body must be rendered again for it (by the scrape
itself when racing; by the render ahead otherwise). prometheus-postgres-exporter is a separate
process; both are scraped over one keep-alive http.client connection per client.

Last, the real deployment shape: the daemon as a separate ``monitor run`` process at its
real 15 s interval, scraped every 15 s at a random phase (in this process the client
and the daemon share one interpreter lock, which adds ~0.5 ms to every scrape).

``uv run python bench/bench_scrape_clients.py`` (quick: 30 scrapes per client, 8 at the
15 s interval); ``--full`` for 200 and 40.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_postgres import (
    EXPORTER,
    STATEMENTS,
    ThreadedDaemon,
    daemon_process,
    exporter_process,
    free_port,
    generate,
    percentile,
)

from monitor.app.config import validate
from monitor.app.demo.testbed import TestBed
from monitor.kernel.negotiation import negotiate

SCRAPE_INTERVAL = 15.0
CLIENTS = {
    "Prometheus 2.x": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Prometheus 3.x": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
    "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "Grafana Alloy": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3",
    "vmagent": "text/plain;version=0.0.4;q=1,*/*;q=0.1",
    "no Accept": None,
}


class Scraper:
    """One keep-alive connection; ``get`` returns (ms, body bytes, content type)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, accept: str | None, gzip: bool) -> tuple[float, bytes, str]:
        headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
        if accept is not None:
            headers["Accept"] = accept
        started = time.perf_counter()
        self.conn.request("GET", "/metrics", headers=headers)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"/metrics answered {response.status}")
        return elapsed, body, response.getheader("content-type", "")

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def daemon(
    dsn: str, top_n: int
) -> Iterator[tuple[ThreadedDaemon, Callable[[], None], Callable[[], None]]]:
    """A daemon watching ``dsn``, a function running one statements collection, and one
    waiting for the render ahead that collection started (the body and its gzip)."""
    config = validate(
        {
            "interval": "1h",
            "http": {"listen": f"127.0.0.1:{free_port()}"},
            "targets": {
                "postgres": [{"name": "bench", "url": dsn, "statements": {"top_n": top_n}}]
            },
            "state": {"url": "sqlite:///:memory:"},
        },
        environ={},
    )
    runner = ThreadedDaemon(config)
    try:
        assert runner.daemon is not None
        daemon = runner.daemon
        deadline = time.monotonic() + 60
        while not all(s.up is not None for s in runner.call(daemon.store.statuses)):
            if time.monotonic() > deadline:
                raise RuntimeError("collectors did not run")
            time.sleep(0.1)
        job = next(j for j in daemon.jobs if j.collector == "postgres_statements")
        # the render ahead starts 1 s after a change (one render per burst of changes);
        # the render itself is what is measured, not that wait
        daemon.exposition._render_ahead_delay = 0.001

        def collect() -> None:
            asyncio.run_coroutine_threadsafe(daemon.runner.run(job), runner.loop).result(60)

        def settle() -> None:
            asyncio.run_coroutine_threadsafe(daemon.exposition.settled(), runner.loop).result(60)

        yield runner, collect, settle
    finally:
        runner.stop()


def fmt(values: list[float]) -> str:
    return f"median {statistics.median(values):7.2f} ms  p99 {percentile(values, 99):7.2f} ms"


def bench_clients(
    port: int, collect: Callable[[], None], requests: int, settle: Callable[[], None] | None = None
) -> dict[str, dict[str, list[float]]]:
    """Per client: identity and gzip latencies, each scrape right after a collection, or
    (with ``settle``) once the render ahead the collection started has finished."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, accept in CLIENTS.items():
        scraper = Scraper(port)
        scraper.get(accept, gzip=False)  # open the connection
        timings: dict[str, list[float]] = {"identity": [], "gzip": []}
        for i in range(requests * 2):
            gzip = i % 2 == 1
            collect()
            if settle is not None:
                settle()
            ms, _, ctype = scraper.get(accept, gzip)
            timings["gzip" if gzip else "identity"].append(ms)
            expected = negotiate(accept).content_type
            if ctype != expected:
                raise RuntimeError(f"{name}: got {ctype}, expected {expected}")
        scraper.close()
        out[name] = timings
    return out


IDLE_SERVER = """
import asyncio, sys
BODY = b"# HELP up up\\n# TYPE up gauge\\nup 1.0\\n"
HEAD = b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(BODY)
async def serve(reader, writer):
    while await reader.readline():
        while (await reader.readline()) not in (b"\\r\\n", b""):
            pass
        writer.write(HEAD + BODY)
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""
"""The least any Python server can do: answers every request with three lines, no
routing, no parsing beyond the request's end. Scraped like the daemon, after the same
idleness, it shows the floor of this machine (waking an idle process and its core)."""


@contextlib.contextmanager
def idle_server() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", IDLE_SERVER, str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the do-nothing server did not listen")
            time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait()


def bench_interval(
    dsn: str, tmp: Path, top_n: int, limit: int | None, scrapes: int
) -> dict[str, list[float]]:
    """As Prometheus scrapes: a ``monitor run`` subprocess collecting at its real 15 s
    interval, scraped once per 15 s at a random phase of it with Prometheus 2.x's headers
    (each scrape sees the latest collection, and finds its render ahead done unless it
    lands in the second or so after the collection); prometheus-postgres-exporter and
    the do-nothing server scraped the same way, 5 and 10 s later, so each of the three is
    idle for 15 s before each scrape."""
    rng = random.Random(7)
    with contextlib.ExitStack() as stack:
        ports = {"ours": stack.enter_context(daemon_process(dsn, tmp, top_n))}
        if Path(EXPORTER).exists():
            ports["postgres_exporter"] = stack.enter_context(exporter_process(dsn, tmp, limit))
        ports["do-nothing server"] = stack.enter_context(idle_server())
        scrapers = {name: Scraper(port) for name, port in ports.items()}
        for scraper in scrapers.values():  # asked for: rendered ahead from now
            scraper.get(CLIENTS["Prometheus 2.x"], gzip=True)
        out: dict[str, list[float]] = {name: [] for name in scrapers}
        start = time.monotonic()
        for i in range(scrapes):
            due = start + (i + rng.random()) * SCRAPE_INTERVAL
            for offset, (name, scraper) in zip((0.0, 5.0, 10.0), scrapers.items(), strict=False):
                time.sleep(max(0.0, due + offset - time.monotonic()))
                out[name].append(scraper.get(CLIENTS["Prometheus 2.x"], gzip=True)[0])
        for scraper in scrapers.values():
            scraper.close()
    return out


def bench_exporter(dsn: str, tmp: Path, limit: int | None, requests: int) -> list[float]:
    with exporter_process(dsn, tmp, limit) as port:
        scraper = Scraper(port)
        scraper.get(CLIENTS["Prometheus 2.x"], gzip=True)
        out = [scraper.get(CLIENTS["Prometheus 2.x"], gzip=True)[0] for _ in range(requests)]
        scraper.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="200 scrapes per client")
    parser.add_argument("--requests", type=int, help="scrapes per client and encoding")
    parser.add_argument("--interval-scrapes", type=int, help="scrapes at the 15 s interval")
    args = parser.parse_args()
    requests = args.requests or (200 if args.full else 30)
    interval_scrapes = args.interval_scrapes or (40 if args.full else 8)
    have_exporter = Path(EXPORTER).exists()
    verdicts = []
    with TestBed(replica=False) as bed, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bed.primary.append_conf({"pg_stat_statements.max": 10000})
        bed.primary.stop()
        bed.primary.start()
        dsn = bed.primary.dsn()
        generate(bed)
        print(f"{requests} scrapes per client and encoding, each after a fresh collection")
        for label, top_n, limit in (
            ("default top 100", 100, 100),
            ("every statement", STATEMENTS + 1000, None),
        ):
            with daemon(dsn, top_n) as (runner, collect, settle):
                assert runner.daemon is not None and runner.daemon.bound_port is not None
                port = runner.daemon.bound_port
                probe = Scraper(port)
                _, body, _ = probe.get(None, gzip=False)
                probe.close()
                series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
                modes = {
                    "racing the render ahead": bench_clients(port, collect, requests),
                    "after the render ahead": bench_clients(port, collect, requests, settle),
                }
            theirs = bench_exporter(dsn, tmp, limit, requests) if have_exporter else None
            interval = bench_interval(dsn, tmp, top_n, limit, interval_scrapes)
            print(f"== {label}: {series} series")
            for mode, results in modes.items():
                text = statistics.median(results["no Accept"]["gzip"])
                print(f"  scraped right after a collection, {mode}:")
                for name, timings in results.items():
                    ratio = statistics.median(timings["gzip"]) / text
                    print(
                        f"    {name:<15} gzip {fmt(timings['gzip'])}   identity "
                        f"{fmt(timings['identity'])}   gzip / text path {ratio:4.2f}x"
                    )
                prom = statistics.median(results["Prometheus 2.x"]["gzip"])
                prom3 = statistics.median(results["Prometheus 3.x"]["gzip"])
                limit_ms = 5.0 if top_n == 100 else 50.0
                verdict = (
                    f"{label}, {mode}: Prometheus 2.x {prom:.2f} ms / 3.x {prom3:.2f} ms "
                    f"(< {limit_ms:g} ms: {'yes' if max(prom, prom3) < limit_ms else 'NO'}), "
                    f"{prom / text:.2f}x text (<= 1.5x: {'yes' if prom / text <= 1.5 else 'NO'})"
                )
                if theirs is not None:
                    verdict += (
                        f", {statistics.median(theirs) / prom:.1f}x faster than "
                        "postgres_exporter (>= 50x)"
                    )
                verdicts.append(verdict)
            ours = statistics.median(interval["ours"])
            floor = statistics.median(interval["do-nothing server"])
            print("  as Prometheus scrapes (every 15 s at a random phase, each server idle 15 s")
            print("  before each scrape; Prometheus 2.x headers, gzip):")
            for name, timings in interval.items():
                print(f"    {name:<18} {fmt(timings)} over {len(timings)} scrapes")
            verdict = (
                f"{label}, separate process at 15 s: {ours:.2f} ms (< {limit_ms:g} ms: "
                f"{'yes' if ours < limit_ms else 'NO'}); the do-nothing server {floor:.2f} ms"
            )
            if "postgres_exporter" in interval:
                exporter = statistics.median(interval["postgres_exporter"])
                verdict += (
                    f"; postgres_exporter {exporter:.2f} ms: {exporter / ours:.1f}x ours (>= 50x),"
                    f" {exporter / floor:.1f}x the do-nothing server (the most any server"
                    " reaches here)"
                )
            verdicts.append(verdict)
            if theirs is not None:
                print(
                    f"  postgres_exporter, back to back (Prometheus 2.x header, gzip) {fmt(theirs)}"
                )
            else:
                print("  prometheus-postgres-exporter is not installed: skipped")
    print("targets:")
    for line in verdicts:
        print("  " + line)


if __name__ == "__main__":
    main()

"""PostgreSQL collectors with 5,000 distinct statements in pg_stat_statements.

Starts a throw-away PostgreSQL (pg_stat_statements.max = 10000), generates STATEMENTS
distinct statements, and prints:

(a) one statements collection cycle against the raw SQL it runs (psycopg alone: the
    pg_stat_statements_info query and the main query, rows fetched), median of CYCLES;
(b) GET /metrics latency of a running daemon, median and p99 over REQUESTS requests, with
    the default top N and with N covering every statement; "fresh" forces a new render
    per request (a collector stored something since the last scrape, as happens when
    Prometheus scrapes every 15 s), "cached" is a repeated scrape;
(c) the daemon's resident memory (a `monitor run` subprocess) over MEMORY_CYCLES
    statements cycles while a workload keeps the statistics moving;
(d) the same scrape latency of prometheus-postgres-exporter (Debian package) exporting
    the same statements through a pg_stat_statements query file;
(e) both servers as separate processes measured with the same minimal keep-alive client
    (http.client, no gzip): in (b) the daemon shares a process and so the GIL with the
    httpx client, which inflates its figures and not postgres_exporter's (a Go process).

Run with ``uv run python bench/bench_postgres.py`` (``make bench``).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from psycopg.rows import tuple_row

from collectors.postgres import PostgresSource
from collectors.postgres.statements import StatementsJob, info_sql, parse_version, statements_sql
from monitor.app.config import validate
from monitor.app.daemon import Daemon
from monitor.app.demo.testbed import TestBed

STATEMENTS = 5000
TABLES = 50
CYCLES = 50
REQUESTS = 200
MEMORY_CYCLES = 1000
MEMORY_INTERVAL = "0.05s"
EXPORTER = "/usr/bin/prometheus-postgres-exporter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def statement_texts() -> list[str]:
    """STATEMENTS distinct shapes: table x selected column x filtered column."""
    per_table = STATEMENTS // TABLES
    out = []
    for t in range(TABLES):
        for k in range(per_table):
            out.append(f"SELECT c{k // 10} FROM bench_t{t} WHERE c{k % 10} = %s")
    return out


def generate(bed: TestBed) -> list[str]:
    texts = statement_texts()
    columns = ", ".join(f"c{i} int" for i in range(10))
    rng = random.Random(1)
    with psycopg.connect(bed.primary.dsn(), autocommit=True) as conn:
        for t in range(TABLES):
            conn.execute(f"CREATE TABLE bench_t{t} ({columns})")
            conn.execute(
                f"INSERT INTO bench_t{t} SELECT g,g,g,g,g,g,g,g,g,g FROM generate_series(1, 50) g"
            )
        with conn.pipeline():
            for text in texts:
                for _ in range(rng.randint(1, 3)):
                    conn.execute(text, (rng.randint(1, 50),), prepare=False)
        count = conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()
    print(f"pg_stat_statements holds {count[0] if count else '?'} entries")
    return texts


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fmt(values: list[float]) -> str:
    return f"median {statistics.median(values):7.2f} ms   p99 {percentile(values, 99):7.2f} ms"


def source_for(dsn: str, top_n: int) -> PostgresSource:
    config = validate(
        {
            "targets": {
                "postgres": [{"name": "bench", "url": dsn, "statements": {"top_n": top_n}}]
            },
            "state": {"url": "sqlite:///:memory:"},
        },
        environ={},
    )
    return PostgresSource(config.targets.postgres[0], config.interval)


async def cycle_vs_raw(dsn: str, top_n: int) -> tuple[float, float]:
    source = source_for(dsn, top_n)
    job = next(j for j in source.jobs() if isinstance(j, StatementsJob))
    await job.collect()  # the first read establishes the totals
    raw_conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, prepare_threshold=None)
    version = (await (await raw_conn.execute(
        "SELECT extversion, n.nspname FROM pg_extension e JOIN pg_namespace n "
        "ON n.oid = e.extnamespace WHERE extname = 'pg_stat_statements'"
    )).fetchone())  # fmt: skip
    assert version is not None
    ext_version, schema = parse_version(version[0]), version[1]
    info = info_sql(schema, ext_version)
    main_sql = statements_sql(schema, ext_version)
    cycle_ms: list[float] = []
    raw_ms: list[float] = []
    rows = 0
    for _ in range(CYCLES):
        started = time.perf_counter()
        samples = await job.collect()
        cycle_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        if info is not None:
            await (await raw_conn.execute(info)).fetchone()
        async with raw_conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(main_sql)
            rows = len(await cur.fetchall())
        raw_ms.append((time.perf_counter() - started) * 1000)
    await raw_conn.close()
    await source.close()
    cycle, raw = statistics.median(cycle_ms), statistics.median(raw_ms)
    print(
        f"(a) top_n={top_n:<5} cycle {fmt(cycle_ms)}  | raw SQL {fmt(raw_ms)}  | "
        f"ratio {cycle / raw:4.2f}x  ({rows} rows, {len(samples)} samples)"
    )
    return cycle, raw


class ThreadedDaemon:
    """A real Daemon on its own event loop in a thread, so the bench can drive it."""

    def __init__(self, config: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.daemon: Daemon | None = None
        self._config = config
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.daemon = Daemon(self._config)
            self._ready.set()
            await self.daemon.run()

        self.loop.run_until_complete(main())

    def call(self, fn: Any) -> Any:
        async def wrapped() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(10)

    def stop(self) -> None:
        if self.daemon is not None:
            self.loop.call_soon_threadsafe(self.daemon.request_stop)
        self._thread.join(20)


IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}


def scrape_latencies(
    url: str, before_each: Any = None, headers: dict[str, str] = IDENTITY
) -> list[float]:
    out = []
    with httpx.Client(timeout=30, headers=headers) as client:
        client.get(url)
        for _ in range(REQUESTS):
            if before_each is not None:
                before_each()
            started = time.perf_counter()
            response = client.get(url)
            out.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return out


@contextlib.contextmanager
def listening_socket_nodelay() -> Iterator[None]:
    """TCP_NODELAY on the daemon's listening socket (inherited by accepted sockets).

    monitor.daemon.bind_socket creates its socket with protocol 0, so asyncio's own
    TCP_NODELAY is skipped and small responses wait ~40 ms for the client's delayed ACK
    (Nagle). Reported; until fixed there, the bench measures both ways.
    """
    import monitor.app.daemon as daemon_module

    original = daemon_module.bind_socket

    def bind(host: str, port: int) -> socket.socket:
        sock = original(host, port)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    daemon_module.bind_socket = bind  # type: ignore[assignment]
    try:
        yield
    finally:
        daemon_module.bind_socket = original  # type: ignore[assignment]


def bench_scrape(dsn: str, top_n: int, nodelay: bool) -> dict[str, float]:
    """Median scrape latencies (identity, gzip) right after a statements collection."""
    port = free_port()
    config = validate(
        {
            "interval": "1h",
            "http": {"listen": f"127.0.0.1:{port}"},
            "targets": {
                "postgres": [{"name": "bench", "url": dsn, "statements": {"top_n": top_n}}]
            },
            "state": {"url": "sqlite:///:memory:"},
        },
        environ={},
    )
    with listening_socket_nodelay() if nodelay else contextlib.nullcontext():
        runner = ThreadedDaemon(config)
    assert runner.daemon is not None
    daemon = runner.daemon
    deadline = time.monotonic() + 60
    while not all(s.up is not None for s in runner.call(daemon.store.statuses)):
        if time.monotonic() > deadline:
            raise RuntimeError("collectors did not run")
        time.sleep(0.1)
    url = f"http://127.0.0.1:{daemon.bound_port}/metrics"
    series = sum(1 for line in httpx.get(url).text.splitlines() if line and line[0] != "#")
    job = next(j for j in daemon.jobs if j.collector == "postgres_statements")
    renders: list[float] = []
    prerender = daemon.exposition._prerender

    def timed_prerender() -> None:
        started = time.perf_counter()
        prerender()
        renders.append((time.perf_counter() - started) * 1000)

    daemon.exposition._prerender = timed_prerender  # type: ignore[method-assign]

    def collect() -> None:  # a real statements cycle stored just before the scrape
        asyncio.run_coroutine_threadsafe(daemon.runner.run(job), runner.loop).result(30)

    fresh = scrape_latencies(url, collect)
    fresh_gzip = scrape_latencies(url, collect, GZIP)
    cached = scrape_latencies(url, headers=GZIP)
    runner.stop()
    how = "TCP_NODELAY" if nodelay else "as shipped"
    print(f"(b) top_n={top_n:<5} {series:>5} series, {how}; each scrape right after a collection:")
    print(f"      identity {fmt(fresh)}   gzip {fmt(fresh_gzip)}")
    print(
        f"      repeated scrape (gzip) {fmt(cached)}   "
        f"re-render after a collection (on the loop, off the scrape path) {fmt(renders)}"
    )
    return {"identity": statistics.median(fresh), "gzip": statistics.median(fresh_gzip)}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def workload(dsn: str, texts: list[str]) -> Iterator[None]:
    stop = threading.Event()

    def run() -> None:
        rng = random.Random(2)
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute(rng.choice(texts), (rng.randint(1, 50),), prepare=False)
                stop.wait(0.001)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def statements_runs(client: httpx.Client, url: str) -> int:
    for line in client.get(url).text.splitlines():
        if (
            line.startswith("monitor_collector_runs_total")
            and 'collector="postgres_statements"' in line
            and 'status="success"' in line
        ):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def bench_memory(dsn: str, texts: list[str], tmp: Path) -> None:
    port = free_port()
    config = {
        "http": {"listen": f"127.0.0.1:{port}"},
        "state": {"url": f"sqlite:///{tmp / 'state.db'}"},
        "targets": {
            "postgres": [
                {
                    "name": "bench",
                    "url": dsn,
                    "statements": {"interval": MEMORY_INTERVAL, "timeout": "5s"},
                }
            ]
        },
    }
    path = tmp / "memory.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "LOG_FORMAT": "console"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    checkpoints = [100, 250, 500, 750, MEMORY_CYCLES]
    readings: list[tuple[int, float]] = []
    try:
        with workload(dsn, texts), httpx.Client(timeout=10) as client:
            deadline = time.monotonic() + 600
            while checkpoints and time.monotonic() < deadline:
                try:
                    runs = statements_runs(client, url)
                except httpx.HTTPError:
                    runs = 0
                if runs >= checkpoints[0]:
                    readings.append((runs, rss_mb(proc.pid)))
                    checkpoints.pop(0)
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(20)
    line = "   ".join(f"cycle {n}: {mb:5.1f} MB" for n, mb in readings)
    growth = readings[-1][1] - readings[1][1] if len(readings) > 2 else float("nan")
    print(f"(c) daemon RSS ({MEMORY_INTERVAL} statements interval): {line}")
    start = readings[1][0] if len(readings) > 1 else "?"
    print(f"    growth from cycle {start} to the end: {growth:+.1f} MB")


def write_exporter_queries(tmp: Path, limit: int | None) -> Path:
    """The pg_stat_statements query file for postgres_exporter (*_exec_time columns)."""
    queries = {
        "pg_stat_statements": {
            "query": (
                "SELECT d.datname, s.queryid::text AS queryid, s.calls, "
                "s.total_exec_time / 1000 AS exec_seconds, s.rows, s.shared_blks_hit, "
                "s.shared_blks_read FROM pg_stat_statements s "
                "JOIN pg_database d ON d.oid = s.dbid WHERE s.toplevel"
                + (f" ORDER BY s.total_exec_time DESC LIMIT {limit}" if limit else "")
            ),
            "metrics": [
                {"datname": {"usage": "LABEL", "description": "database"}},
                {"queryid": {"usage": "LABEL", "description": "query id"}},
                {"calls": {"usage": "COUNTER", "description": "calls"}},
                {"exec_seconds": {"usage": "COUNTER", "description": "execution time"}},
                {"rows": {"usage": "COUNTER", "description": "rows"}},
                {"shared_blks_hit": {"usage": "COUNTER", "description": "hits"}},
                {"shared_blks_read": {"usage": "COUNTER", "description": "reads"}},
            ],
        }
    }
    path = tmp / f"queries-{limit}.yaml"
    path.write_text(yaml.safe_dump(queries))
    return path


def bench_exporter(dsn: str, tmp: Path, limit: int | None) -> dict[str, float] | None:
    if not Path(EXPORTER).exists() and shutil.which("prometheus-postgres-exporter") is None:
        print("(d) prometheus-postgres-exporter is not installed: skipped")
        return None
    with exporter_process(dsn, tmp, limit) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        text = httpx.get(url, timeout=30).text
        series = sum(1 for line in text.splitlines() if line.startswith("pg_stat_statements_calls"))
        latencies = scrape_latencies(url)
        latencies_gzip = scrape_latencies(url, headers=GZIP)
    print(
        f"(d) postgres_exporter 0.11, {series} statements: identity {fmt(latencies)}   "
        f"gzip {fmt(latencies_gzip)}"
    )
    return {"identity": statistics.median(latencies), "gzip": statistics.median(latencies_gzip)}


def client_latencies(port: int, headers: dict[str, str] = IDENTITY) -> list[float]:
    """GET /metrics REQUESTS times on one keep-alive connection, body read in full."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    try:
        for i in range(REQUESTS + 1):
            started = time.perf_counter()
            conn.request("GET", "/metrics", headers=headers)
            response = conn.getresponse()
            response.read()
            if i:  # the first opens the connection
                out.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"/metrics answered {response.status}")
    finally:
        conn.close()
    return out


def statements_runs_safe(client: httpx.Client, url: str) -> int:
    try:
        return statements_runs(client, url)
    except httpx.HTTPError:
        return 0


@contextlib.contextmanager
def serving(
    argv: list[str], env: dict[str, str], ready: Callable[[], bool], timeout: float, what: str
) -> Iterator[None]:
    """Run ``argv`` in the background until the block ends; enter once ``ready()``."""
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} within {timeout:g} s")
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(20)


@contextlib.contextmanager
def daemon_process(dsn: str, tmp: Path, top_n: int) -> Iterator[int]:
    """A `monitor run` subprocess watching ``dsn``; yields its port once statements are up."""
    port = free_port()
    config = {
        "interval": "15s",
        "http": {"listen": f"127.0.0.1:{port}"},
        "state": {"url": "sqlite:///:memory:"},
        "targets": {"postgres": [{"name": "bench", "url": dsn, "statements": {"top_n": top_n}}]},
    }
    path = tmp / f"process-{top_n}.yaml"
    path.write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{port}/metrics"
    with httpx.Client(timeout=10) as client:

        def ready() -> bool:
            return statements_runs_safe(client, url) >= 1

        argv = [sys.executable, "-m", "monitor", "run", "-c", str(path)]
        with serving(argv, {"LOG_FORMAT": "console"}, ready, 60, "no statements collected"):
            yield port


@contextlib.contextmanager
def exporter_process(dsn: str, tmp: Path, limit: int | None) -> Iterator[int]:
    """postgres_exporter with the statements query file; yields its port once it exports."""
    path = write_exporter_queries(tmp, limit)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"

    def ready() -> bool:
        try:
            return "pg_stat_statements_calls" in httpx.get(url, timeout=30).text
        except httpx.HTTPError:
            return False

    argv = [EXPORTER, f"--extend.query-path={path}", f"--web.listen-address=127.0.0.1:{port}"]
    env = {"DATA_SOURCE_NAME": dsn + "?sslmode=disable"}
    with serving(argv, env, ready, 30, "postgres_exporter exported no pg_stat_statements"):
        yield port


def bench_processes(dsn: str, tmp: Path) -> None:
    if not Path(EXPORTER).exists():
        print("(e) prometheus-postgres-exporter is not installed: skipped")
        return
    cases = (("top 100", 100, 100), ("every statement", STATEMENTS + 1000, None))
    for label, top_n, limit in cases:
        with daemon_process(dsn, tmp, top_n) as port:
            ours = client_latencies(port)
        with exporter_process(dsn, tmp, limit) as port:
            theirs = client_latencies(port)
        print(
            f"(e) {label}, separate processes, http.client: ours {fmt(ours)}   "
            f"postgres_exporter {fmt(theirs)}   -> "
            f"{statistics.median(theirs) / statistics.median(ours):5.1f}x faster"
        )


def main() -> None:
    with TestBed(replica=False) as bed, tempfile.TemporaryDirectory() as tmp_name:
        bed.primary.append_conf({"pg_stat_statements.max": 10000})
        bed.primary.stop()
        bed.primary.start()
        dsn = bed.primary.dsn()
        texts = generate(bed)
        print(f"{CYCLES} cycles each, {REQUESTS} requests each")
        cycle_default, raw_default = asyncio.run(cycle_vs_raw(dsn, 100))
        asyncio.run(cycle_vs_raw(dsn, STATEMENTS + 1000))
        bench_scrape(dsn, 100, nodelay=False)
        default = bench_scrape(dsn, 100, nodelay=True)
        every = bench_scrape(dsn, STATEMENTS + 1000, nodelay=True)
        tmp = Path(tmp_name)
        for label, ours, limit in (("top 100", default, 100), ("every statement", every, None)):
            theirs = bench_exporter(dsn, tmp, limit)
            if theirs is not None:
                print(
                    f"    postgres_exporter / ours, {label}: identity "
                    f"{theirs['identity'] / ours['identity']:5.1f}x   "
                    f"gzip {theirs['gzip'] / ours['gzip']:5.1f}x"
                )
        bench_processes(dsn, tmp)
        bench_memory(dsn, texts, tmp)
        print(
            f"targets: cycle <= 1.5x raw ({cycle_default / raw_default:.2f}x); scrape median "
            f"< 5 ms default ({default['identity']:.2f} / gzip {default['gzip']:.2f}) and "
            f"< 50 ms all ({every['identity']:.2f} / gzip {every['gzip']:.2f}); "
            ">= 20x faster than postgres_exporter; RSS flat and < 100 MB"
        )


if __name__ == "__main__":
    main()

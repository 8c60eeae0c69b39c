"""One daemon for a fleet: 50 PostgreSQL databases, 20 Redis, 20 Memcached, 50 HTTP probes.

Starts CLUSTERS throw-away PostgreSQL clusters with 50 databases between them (each
with pg_stat_statements), two Redis and two Memcached servers (20 targets each, spread
over them), and a local HTTP server for 50 probes. Then runs ``monitor run`` (a
subprocess) three times, watching 10, 25 and then all 50 databases with the other
targets scaled alike, and prints for each: CPU seconds per collection cycle (from
/proc, after a warm-up), the CPU share of one core that means at the real 15 s interval,
resident memory, both per target, and the event-loop lag (p99 from
``monitor_event_loop_lag_seconds``), side by side so growth with the number of targets
shows.

The run is shortened: 4 cycles of 15 s per step after a 2-cycle warm-up (``--full``:
120 cycles, 30 minutes). ``--interval`` collects faster; CPU per cycle is then still what
a 15 s interval pays per cycle, so the share of a core is given for 15 s, but a very
short interval overloads the loop and distorts it. ``--profile FILE`` runs the last
step's daemon under cProfile.

``uv run python bench/bench_fleet.py [--full] [--clusters N] [--profile FILE]``
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.app.demo.testbed import TestBed
from monitor.app.demo.testservers import free_port, memcached_server, redis_server

DATABASES = 50
REDIS = 20
MEMCACHED = 20
PROBES = 50
INTERVAL = 15.0
REAL_INTERVAL = 15.0
STEPS = (10, 25, 50)


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def databases(bed: TestBed, count: int, offset: int) -> list[str]:
    """``count`` databases on ``bed``'s primary, each with pg_stat_statements; their URLs."""
    names = [f"fleet_{offset + i}" for i in range(count)]
    with psycopg.connect(bed.primary.dsn(), autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    for name in names:
        with psycopg.connect(bed.primary.dsn(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
    return [bed.primary.dsn(name) for name in names]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def lag_buckets(port: int) -> dict[float, float]:
    """``monitor_event_loop_lag_seconds`` cumulative bucket counts by upper bound."""
    out: dict[float, float] = {}
    for line in get(port, "/metrics").decode().splitlines():
        if line.startswith("monitor_event_loop_lag_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(bound)] = float(line.rsplit(" ", 1)[1])
    return out


def lag_p99(before: dict[float, float], after: dict[float, float]) -> tuple[float, int]:
    """The smallest bucket bound holding 99% of the ticks between two readings."""
    counts = {b: after.get(b, 0.0) - before.get(b, 0.0) for b in after}
    total = counts.get(float("inf"), 0.0)
    for bound in sorted(counts):
        if total and counts[bound] >= 0.99 * total:
            return bound, int(total)
    return float("nan"), int(total)


def all_ran(port: int, jobs: int) -> bool:
    """True once at least ``jobs`` collector jobs have finished a run (``/healthz`` holds
    only counts without credentials: ``monitor_collector_up`` has a series per job run)."""
    try:
        body = get(port, "/metrics").decode()
    except (OSError, ValueError, http.client.HTTPException):
        return False
    return body.count("\nmonitor_collector_up{") >= jobs


def config_for(
    step: int, pg: list[str], redis: list[str], memcached: list[str], site: str, port: int
) -> dict[str, Any]:
    scale = step / DATABASES
    return {
        "interval": f"{INTERVAL:g}s",
        "http": {"listen": f"127.0.0.1:{port}"},
        "state": {"url": "sqlite:///:memory:"},
        "targets": {
            "postgres": [{"name": f"db{i}", "url": url} for i, url in enumerate(pg[:step])],
            "redis": [
                {"name": f"redis{i}", "url": url}
                for i, url in enumerate(redis[: round(REDIS * scale)])
            ],
            "memcached": [
                {"name": f"mc{i}", "servers": addr}
                for i, addr in enumerate(memcached[: round(MEMCACHED * scale)])
            ],
            "http": [
                {"name": f"probe{i}", "url": f"{site}/page/{i}"}
                for i in range(round(PROBES * scale))
            ],
        },
    }


def run_step(
    config: dict[str, Any], port: int, cycles: int, tmp: Path, profile: str | None = None
) -> dict[str, float]:
    path = tmp / f"fleet-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    targets = sum(len(v) for v in config["targets"].values())
    prefix = ["-m", "cProfile", "-o", profile] if profile else []
    proc = subprocess.Popen(
        [sys.executable, *prefix, "-m", "monitor", "run", "-c", str(path)],
        env={**os.environ, "LOG_FORMAT": "console", "LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not all_ran(port, targets):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the daemon with {targets} targets did not run every job")
            time.sleep(0.5)
        time.sleep(2 * INTERVAL)  # warm-up: connections open, caches filled
        lag_before = lag_buckets(port)
        cpu_before, started = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(cycles * INTERVAL)
        cpu = cpu_seconds(proc.pid) - cpu_before
        elapsed = time.monotonic() - started
        rss = rss_mb(proc.pid)
        p99, ticks = lag_p99(lag_before, lag_buckets(port))
    finally:
        proc.terminate()
        proc.wait(20)
    per_cycle = cpu / (elapsed / INTERVAL)
    return {
        "targets": targets,
        "cpu_per_cycle": per_cycle,
        "cpu_share_15s": per_cycle / REAL_INTERVAL,
        "rss": rss,
        "lag_p99": p99,
        "ticks": ticks,
    }


def main() -> None:
    global INTERVAL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="120 cycles per step")
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--profile", help="cProfile the daemon of the last step into this file")
    parser.add_argument("--interval", type=float, default=INTERVAL, help="collection interval")
    parser.add_argument(
        "--steps", default=",".join(map(str, STEPS)), help="databases per step, e.g. 50"
    )
    args = parser.parse_args()
    INTERVAL = args.interval
    cycles = 120 if args.full else 4
    redis_bin = shutil.which("redis-server")
    memcached_bin = shutil.which("memcached")
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        beds = [stack.enter_context(TestBed(replica=False)) for _ in range(args.clusters)]
        per_cluster = -(-DATABASES // args.clusters)
        for bed in beds:
            # the test bed's 50 connections are what 25 targets hold (two each): with
            # them used up, the diagnostic job's own connection fails and the
            # connection alerts fire, and the run measures a fleet in trouble
            bed.primary.append_conf({"max_connections": 40 + 4 * per_cluster})
            bed.primary.stop()
            bed.primary.start()
        by_cluster = [
            databases(bed, min(per_cluster, DATABASES - i * per_cluster), i * per_cluster)
            for i, bed in enumerate(beds)
        ]
        # interleave the clusters, so every step watches all of them
        pg = [g[i] for i in range(per_cluster) for g in by_cluster if i < len(g)]
        redis: list[str] = []
        if redis_bin:
            servers = [stack.enter_context(redis_server(redis_bin)) for _ in range(2)]
            redis = [servers[i % 2].url.rsplit("/", 1)[0] + f"/{i % 16}" for i in range(REDIS)]
        memcached: list[str] = []
        if memcached_bin:
            servers_mc = [stack.enter_context(memcached_server(memcached_bin)) for _ in range(2)]
            memcached = [servers_mc[i % 2].address for i in range(MEMCACHED)]
        site = stack.enter_context(http_site())
        print(
            f"{len(pg)} databases on {args.clusters} clusters, {len(redis)} Redis, "
            f"{len(memcached)} Memcached targets, {PROBES} probes; {cycles} cycles at "
            f"{INTERVAL:g} s each step"
        )
        results = []
        steps = [int(n) for n in args.steps.split(",")]
        for step in steps:
            port = free_port()
            config = config_for(step, pg, redis, memcached, site, port)
            profile = args.profile if step == steps[-1] else None
            result = run_step(config, port, cycles, tmp, profile)
            results.append(result)
            n = result["targets"]
            print(
                f"  {step:>2} databases, {n:>3.0f} targets: CPU {result['cpu_per_cycle']:6.3f} s"
                f"/cycle = {result['cpu_share_15s']:6.1%} of a core at 15 s "
                f"({result['cpu_per_cycle'] / n * 1000:5.1f} ms/target/cycle)   RSS "
                f"{result['rss']:6.1f} MB ({result['rss'] / n * 1024:6.0f} KB/target)   "
                f"loop lag p99 <= {result['lag_p99'] * 1000:g} ms ({result['ticks']} ticks)"
            )
        first, last = results[0], results[-1]
        extra = last["targets"] - first["targets"]
        if extra:
            print(
                f"  growth from {first['targets']:.0f} to {last['targets']:.0f} targets: "
                f"{(last['cpu_per_cycle'] - first['cpu_per_cycle']) / extra * 1000:.1f} ms CPU"
                f" and {(last['rss'] - first['rss']) / extra * 1024:.0f} KB RSS per added target"
            )
        verdict = "yes" if last["cpu_share_15s"] < 0.10 and last["rss"] < 250 else "NO"
        print(
            f"targets: CPU < 10% of a core ({last['cpu_share_15s']:.1%}) and RSS < 250 MB "
            f"({last['rss']:.0f} MB) with everything: {verdict}"
        )


if __name__ == "__main__":
    main()

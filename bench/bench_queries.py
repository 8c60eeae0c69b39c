"""Custom SQL queries: what 50 business queries on a 15 s interval cost the daemon.

Starts a throw-away PostgreSQL with a 200,000-row ``orders`` table and runs two daemons
side by side, at the same time, against the same server, with the same built-in
PostgreSQL collectors on the same interval:

- ``baseline``: the built-in collectors only;
- ``queries``: the same, plus QUERIES custom queries (five shapes: counts per status,
  oldest pending order, revenue per hour, a histogram of order amounts, a counter).

It prints, for the measured window (after a warm-up):

(a) each daemon's CPU time as a share of one core (from /proc), and the difference:
    the cost of the queries (target: under 5% of one core);
(b) the built-in collectors' cycle times (``monitor_collector_duration_seconds`` of
    every run, sampled from /metrics), median per collector and the ratio
    queries/baseline of their sum (target: within 10%, i.e. a ratio under 1.10);
(c) the custom queries' own run durations (median, max) and their failures.

Defaults are a short run (90 s at a 15 s interval: 6 cycles); ``--full`` measures for
10 minutes. ``--interval`` and ``--seconds`` override either.

Run with ``uv run python bench/bench_queries.py [--full]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.app.demo.testbed import TestBed

QUERIES = 50
WARMUP = 10.0
TICKS = os.sysconf("SC_CLK_TCK")

SETUP = """
CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    status      text NOT NULL,
    amount      numeric(10, 2) NOT NULL,
    created_at  timestamptz NOT NULL
);
INSERT INTO orders (status, amount, created_at)
SELECT (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + i % 4],
       (i % 500) + 0.99,
       now() - (i % 86400) * interval '1 second'
FROM generate_series(1, 200000) i;
CREATE INDEX orders_status_created ON orders (status, created_at);
CREATE TABLE order_totals (shop text PRIMARY KEY, orders bigint NOT NULL);
INSERT INTO order_totals SELECT 'shop' || i, i * 1000 FROM generate_series(1, 20) i;
ANALYZE;
"""


def query_docs(count: int, interval: float) -> list[dict[str, Any]]:
    """``count`` queries in five shapes, each with its own parameter and metric names."""
    shapes: list[tuple[str, list[dict[str, Any]]]] = [
        (
            "SELECT status, count(*) AS n FROM orders"
            " WHERE created_at > now() - %(window)s::interval GROUP BY status",
            [{"type": "gauge", "labels": ["status"], "value": "n"}],
        ),
        (
            "SELECT extract(epoch FROM now() - min(created_at)) AS age FROM orders"
            " WHERE status = 'new' AND created_at > now() - %(window)s::interval",
            [{"type": "gauge", "value": "age"}],
        ),
        (
            "SELECT date_trunc('hour', created_at)::text AS hour, sum(amount) AS revenue"
            " FROM orders WHERE status = 'paid' AND created_at > now() - %(window)s::interval"
            " GROUP BY 1",
            [{"type": "gauge", "labels": ["hour"], "value": "revenue"}],
        ),
        (
            "SELECT count(*) FILTER (WHERE amount <= 10) AS le_10,"
            " count(*) FILTER (WHERE amount <= 100) AS le_100, count(*) AS n,"
            " sum(amount) AS total FROM orders WHERE created_at > now() - %(window)s::interval",
            [
                {
                    "type": "histogram",
                    "buckets": [{"le": 10, "column": "le_10"}, {"le": 100, "column": "le_100"}],
                    "count": "n",
                    "sum": "total",
                }
            ],
        ),
        (
            "SELECT shop, orders FROM order_totals WHERE length(%(window)s) > 0",
            [{"type": "counter", "labels": ["shop"], "value": "orders"}],
        ),
    ]
    docs = []
    for i in range(count):
        sql, metrics = shapes[i % len(shapes)]
        named = []
        for metric in metrics:
            suffix = "_total" if metric["type"] == "counter" else ""
            named.append({"name": f"bench_q{i}{suffix}", "help": f"bench query {i}", **metric})
        minutes = 5 + (i * 7) % 120
        docs.append(
            {
                "name": f"q{i}",
                "targets": ["primary"],
                "interval": f"{interval:g}s",
                "sql": sql,
                "params": {"window": f"{minutes} minutes"},
                "metrics": named,
            }
        )
    return docs


def config(dsn: str, port: int, interval: float, queries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "interval": f"{interval:g}s",
        "http": {"listen": f"127.0.0.1:{port}"},
        "state": {"url": "sqlite:///:memory:"},
        "targets": {"postgres": [{"name": "primary", "url": dsn}]},
        "queries": queries,
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


@contextlib.contextmanager
def daemon(
    tmp: Path, name: str, doc: dict[str, Any]
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump(doc))
    log = (tmp / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LOG_FORMAT": "json"},
    )
    url = f"http://{doc['http']['listen']}/metrics"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: {(tmp / f'{name}.log').read_text()}")
            time.sleep(0.2)
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Durations = dict[str, list[float]]


def sample_durations(url: str, seen: dict[str, float], out: Durations, errors: Durations) -> None:
    """Record each collector's last duration once per run (a changed last-success time)."""
    text = httpx.get(url, timeout=5).text
    durations: dict[str, float] = {}
    stamps: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "monitor_rule_evaluation_seconds":
                out["<rule evaluation>"].append(s.value)
            if s.name == "monitor_rule_evaluations_total":
                out["<evaluations>"].append(s.value)
            collector = s.labels.get("collector")
            if collector is None:
                continue
            if s.name == "monitor_collector_duration_seconds":
                durations[collector] = s.value
            elif s.name == "monitor_collector_last_success_timestamp_seconds":
                stamps[collector] = s.value
            elif s.name == "monitor_collector_runs_total" and s.labels.get("status") != "success":
                errors[collector] = [s.value]
    for collector, stamp in stamps.items():
        if seen.get(collector) != stamp and collector in durations:
            seen[collector] = stamp
            out[collector].append(durations[collector])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="measure for 10 minutes")
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=None, help="measured window")
    parser.add_argument("--queries", type=int, default=QUERIES)
    args = parser.parse_args()
    window = args.seconds or (600.0 if args.full else 90.0)
    with (
        tempfile.TemporaryDirectory(prefix="bench-queries-") as scratch,
        TestBed(replica=False) as bed,
    ):
        tmp = Path(scratch)
        bed.run_sql(bed.primary, SETUP)
        dsn = bed.primary.dsn()
        docs = query_docs(args.queries, args.interval)
        base_doc = config(dsn, free_port(), args.interval, [])
        with_doc = config(dsn, free_port(), args.interval, docs)
        print(
            f"{args.queries} queries every {args.interval:g}s; warm-up {WARMUP:g}s, "
            f"measured {window:g}s, both daemons side by side"
        )
        with (
            daemon(tmp, "baseline", base_doc) as (base, base_url),
            daemon(tmp, "queries", with_doc) as (qd, q_url),
        ):
            time.sleep(WARMUP)
            seen: dict[str, dict[str, float]] = {"baseline": {}, "queries": {}}
            runs: dict[str, Durations] = {
                "baseline": defaultdict(list),
                "queries": defaultdict(list),
            }
            errors: dict[str, Durations] = {"baseline": {}, "queries": {}}
            for name, url in (("baseline", base_url), ("queries", q_url)):
                sample_durations(url, seen[name], defaultdict(list), {})  # skip warm-up runs
            cpu0 = {"baseline": cpu_seconds(base.pid), "queries": cpu_seconds(qd.pid)}
            started = time.monotonic()
            while time.monotonic() - started < window:
                for name, url in (("baseline", base_url), ("queries", q_url)):
                    sample_durations(url, seen[name], runs[name], errors[name])
                time.sleep(2.5)
            wall = time.monotonic() - started
            cpu1 = {"baseline": cpu_seconds(base.pid), "queries": cpu_seconds(qd.pid)}
        report(cpu0, cpu1, wall, runs, errors)


def report(
    cpu0: dict[str, float],
    cpu1: dict[str, float],
    wall: float,
    runs: dict[str, Durations],
    errors: dict[str, Durations],
) -> None:
    share = {k: (cpu1[k] - cpu0[k]) / wall for k in cpu0}
    added = share["queries"] - share["baseline"]
    print("\n(a) CPU, share of one core over the window")
    print(f"    baseline daemon      {share['baseline'] * 100:6.2f}%")
    print(f"    with queries         {share['queries'] * 100:6.2f}%")
    verdict = "OK" if added < 0.05 else "OVER"
    print(f"    added by the queries {added * 100:6.2f}%   (target < 5%: {verdict})")
    print("\n(b) built-in collector cycle times, median ms (runs)")
    builtin = sorted(c for c in runs["baseline"] if not c.startswith(("query:", "<")))
    total = {"baseline": 0.0, "queries": 0.0}
    for collector in builtin:
        cells = []
        for name in ("baseline", "queries"):
            values = runs[name].get(collector, [])
            median = statistics.median(values) if values else float("nan")
            if values:
                total[name] += median
            cells.append(f"{median * 1000:8.2f} ({len(values):3d})")
        print(f"    {collector:<24} baseline {cells[0]}   with queries {cells[1]}")
    ratio = total["queries"] / total["baseline"] if total["baseline"] else float("nan")
    verdict = "OK" if ratio < 1.10 else "OVER"
    print(f"    sum of medians ratio queries/baseline: {ratio:.3f}   (target < 1.10: {verdict})")
    print("\n    rule evaluation (the alerting component, at most one a second), median ms:")
    for name in ("baseline", "queries"):
        evals = runs[name].get("<rule evaluation>", [])
        counts = runs[name].get("<evaluations>", [])
        if evals and len(counts) > 1:
            each = statistics.median(evals)
            rate = (counts[-1] - counts[0]) / wall
            print(
                f"    {name:<10} {each * 1000:6.2f} ms x {rate:5.2f} evaluations/s"
                f" = {each * rate * 100:5.2f}% of a core"
            )
    query_runs = [v for c, vs in runs["queries"].items() if c.startswith("query:") for v in vs]
    print("\n(c) custom queries")
    if query_runs:
        median = statistics.median(query_runs) * 1000
        print(
            f"    {len(query_runs)} successful runs, median {median:.2f} ms,"
            f" max {max(query_runs) * 1000:.2f} ms"
        )
    failed = {c: v[0] for c, v in errors["queries"].items() if c.startswith("query:") and v[0]}
    print(f"    queries with failed runs: {len(failed)}")


if __name__ == "__main__":
    main()

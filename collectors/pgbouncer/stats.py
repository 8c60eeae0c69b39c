"""Per-database traffic from PgBouncer's ``SHOW STATS``, as counters and interval rates.

PgBouncer's ``total_*_time`` columns are microseconds. Counters are running totals kept
here (see :mod:`collectors.running_totals`), so they never go backwards when PgBouncer
restarts. Rates and the average query time cover the interval since the previous run
and are absent on the first run (and the average when no query ran). Exposition::

    pgbouncer_transactions_total{target="pool",database="app"} 1520.0
    pgbouncer_queries_total{target="pool",database="app"} 3040.0
    pgbouncer_received_bytes_total{target="pool",database="app"} 181234.0
    pgbouncer_sent_bytes_total{target="pool",database="app"} 912345.0
    pgbouncer_transaction_seconds_total{target="pool",database="app"} 12.5
    pgbouncer_query_seconds_total{target="pool",database="app"} 3.1
    pgbouncer_client_wait_seconds_total{target="pool",database="app"} 0.8
    pgbouncer_transactions_per_second{target="pool",database="app"} 20.3
    pgbouncer_queries_per_second{target="pool",database="app"} 40.6
    pgbouncer_average_query_seconds{target="pool",database="app"} 0.001
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from collectors.pgbouncer.pools import number
from collectors.running_totals import CounterGroup, ratio
from monitor.kernel.snapshot import MetricSpec, Sample, counter, gauge

# SHOW STATS column -> (exported counter, scale to base units)
COUNTERS: dict[str, tuple[MetricSpec, float]] = {
    "total_xact_count": (
        counter("pgbouncer_transactions_total", "Transactions pooled", "database"),
        1.0,
    ),
    "total_query_count": (
        counter("pgbouncer_queries_total", "Queries pooled", "database"),
        1.0,
    ),
    "total_received": (
        counter("pgbouncer_received_bytes_total", "Bytes received from clients", "database"),
        1.0,
    ),
    "total_sent": (
        counter("pgbouncer_sent_bytes_total", "Bytes sent to clients", "database"),
        1.0,
    ),
    "total_xact_time": (
        counter(
            "pgbouncer_transaction_seconds_total",
            "Time spent in transactions (including idle in transaction)",
            "database",
        ),
        1e-6,
    ),
    "total_query_time": (
        counter("pgbouncer_query_seconds_total", "Time spent running queries", "database"),
        1e-6,
    ),
    "total_wait_time": (
        counter(
            "pgbouncer_client_wait_seconds_total",
            "Time clients spent waiting for a server connection",
            "database",
        ),
        1e-6,
    ),
}
TRANSACTION_RATE = gauge(
    "pgbouncer_transactions_per_second", "Transactions per second over the last interval",
    "database",
)  # fmt: skip
QUERY_RATE = gauge(
    "pgbouncer_queries_per_second", "Queries per second over the last interval", "database"
)
AVERAGE_QUERY = gauge(
    "pgbouncer_average_query_seconds", "Mean query time over the last interval", "database"
)


class StatsTracker:
    """Running totals per database, kept across runs by the job."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._groups: dict[str, tuple[CounterGroup, float]] = {}

    def samples(self, target: str, rows: Sequence[Mapping[str, Any]]) -> Iterator[Sample]:
        now = self._clock()
        for row in rows:
            db = str(row.get("database"))
            raw = {column: number(row, column) for column in COUNTERS if column in row}
            group, last_time = self._groups.get(db, (CounterGroup(), now))
            self._groups[db] = (group, now)
            update = group.update(raw)
            for column, total in update.totals.items():
                spec, scale = COUNTERS[column]
                yield spec(total * scale, db, target=target)
            elapsed = now - last_time
            if update.deltas is None or elapsed <= 0:
                continue
            deltas = update.deltas
            if "total_xact_count" in deltas:
                yield TRANSACTION_RATE(deltas["total_xact_count"] / elapsed, db, target=target)
            if "total_query_count" in deltas:
                yield QUERY_RATE(deltas["total_query_count"] / elapsed, db, target=target)
            average = ratio(
                deltas.get("total_query_time", 0.0) * 1e-6, deltas.get("total_query_count", 0.0)
            )
            if average is not None:
                yield AVERAGE_QUERY(average, db, target=target)

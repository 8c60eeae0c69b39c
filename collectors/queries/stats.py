"""Each query's own health, exported with its samples (and alone when it fails)::

    monitor_query_duration_seconds{target="primary",query="signups"} 0.004
    monitor_query_rows{target="primary",query="signups"} 3
    monitor_query_errors_total{target="primary",query="signups",reason="timeout"} 0
    monitor_query_rows_dropped_total{target="primary",query="signups"} 0
    monitor_query_samples_dropped_total{target="primary",query="signups",metric="m",reason="null"} 1

Error reasons: ``timeout`` (statement_timeout or the run's deadline), ``lock_timeout``,
``read_only`` (the query tried to write), ``permission``, ``connection``, ``query`` (any
other error PostgreSQL reports: syntax, a missing table or column, bad data),
``columns`` (the result lacks a column a metric reads) and ``other``.
"""

from __future__ import annotations

from collections import Counter

import psycopg
from psycopg import errors as pgerrors

from collectors.queries.samples import Drops, MissingColumns
from monitor.kernel.snapshot import Sample, counter, gauge

ERRORS = counter(
    "monitor_query_errors_total", "Failed runs of a custom query, by reason", "query", "reason"
)
DURATION = gauge(
    "monitor_query_duration_seconds", "Duration of the custom query's last run", "query"
)
ROWS = gauge("monitor_query_rows", "Rows the custom query's last run returned (read)", "query")
ROWS_DROPPED = counter(
    "monitor_query_rows_dropped_total",
    "Rows beyond the query's max_rows, counted and not exported",
    "query",
)
SAMPLES_DROPPED = counter(
    "monitor_query_samples_dropped_total",
    "Samples not exported: null, not_numeric, not_cumulative, duplicate, max_series",
    "query",
    "metric",
    "reason",
)

REASONS = (
    "timeout",
    "lock_timeout",
    "read_only",
    "permission",
    "connection",
    "query",
    "columns",
    "other",
)


def classify(exc: BaseException) -> str:
    """The ``reason`` label of a failed run."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, MissingColumns):
        return "columns"
    if isinstance(exc, pgerrors.QueryCanceled):
        return "timeout"
    if isinstance(exc, pgerrors.LockNotAvailable):
        return "lock_timeout"
    if isinstance(exc, pgerrors.ReadOnlySqlTransaction):
        return "read_only"
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return "permission"
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        return "connection"  # refused, reset, authentication: no SQL state from a statement
    if isinstance(exc, pgerrors.AdminShutdown | pgerrors.CannotConnectNow):
        return "connection"
    if isinstance(exc, OSError | psycopg.InterfaceError):
        return "connection"
    if isinstance(exc, psycopg.Error):
        return "query"
    return "other"


class QueryStats:
    """Counters of one query on one target, kept across runs by its job."""

    def __init__(self, query: str, target: str, metrics: tuple[str, ...]) -> None:
        self.query = query
        self.target = target
        self.errors: Counter[str] = Counter({reason: 0 for reason in REASONS})
        self.rows_dropped = 0
        self.samples_dropped: Drops = Counter()
        for metric in metrics:
            self.samples_dropped[(metric, "null")] += 0
            self.samples_dropped[(metric, "max_series")] += 0
        self.duration: float | None = None
        self.rows: int | None = None

    def success(self, duration: float, rows: int, excess: int, drops: Drops) -> None:
        self.duration, self.rows = duration, rows
        self.rows_dropped += excess
        self.samples_dropped.update(drops)

    def failure(self, reason: str, duration: float) -> None:
        self.errors[reason] += 1
        self.duration, self.rows = duration, None

    def samples(self) -> list[Sample]:
        q, t = self.query, self.target
        out = [ERRORS(n, q, reason, target=t) for reason, n in sorted(self.errors.items())]
        out.append(ROWS_DROPPED(self.rows_dropped, q, target=t))
        out.extend(
            SAMPLES_DROPPED(n, q, metric, reason, target=t)
            for (metric, reason), n in sorted(self.samples_dropped.items())
        )
        if self.duration is not None:
            out.append(DURATION(self.duration, q, target=t))
        if self.rows is not None:
            out.append(ROWS(self.rows, q, target=t))
        return out

"""Buffer cache hits: per-database counters and heap/index hit ratios over the last interval.

Exposition::

    pg_blks_hit_total{target="primary",datname="app"} 982341.0
    pg_blks_read_total{target="primary",datname="app"} 1203.0
    pg_cache_hit_ratio{target="primary",scope="heap"} 0.994
    pg_cache_hit_ratio{target="primary",scope="index"} 0.999

The counters come from ``pg_stat_database`` (the shared-objects row, whose datname is
NULL, is skipped) and never go backwards across ``pg_stat_reset()`` (see
:mod:`collectors.postgres.counters`).

The ratios are ``hit / (hit + read)`` of the increase since the previous run, summed
over the user tables (heap) and their indexes (index) of the connected database, as
pg-extras ``cache_hit`` does but from deltas: a cumulative ratio hides a regression.
A ratio is absent on the first run, when a counter went backwards (stats reset), and
when there were no reads at all (zero denominator), never 0 or 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors.postgres.connection import PostgresPool
from collectors.postgres.counters import RunningTotals
from collectors.postgres.job import PostgresJob
from collectors.postgres.notices import Notices
from monitor.kernel.snapshot import Sample, counter, gauge

BLKS_HIT = counter("pg_blks_hit_total", "Buffer cache hits (pg_stat_database)", "datname")
BLKS_READ = counter(
    "pg_blks_read_total", "Blocks read from disk or OS cache (pg_stat_database)", "datname"
)
HIT_RATIO = gauge(
    "pg_cache_hit_ratio",
    "Buffer cache hit ratio of the connected database's user tables over the last interval",
    "scope",
)

DATABASE_SQL = """
SELECT datname, blks_hit::float8 AS hit, blks_read::float8 AS read
FROM pg_stat_database WHERE datname IS NOT NULL
"""
STATIO_SQL = """
SELECT
  coalesce(sum(heap_blks_hit), 0)::float8 AS heap_hit,
  coalesce(sum(heap_blks_read), 0)::float8 AS heap_read,
  coalesce(sum(idx_blks_hit), 0)::float8 AS idx_hit,
  coalesce(sum(idx_blks_read), 0)::float8 AS idx_read
FROM pg_statio_user_tables
"""


def delta_ratio(hit: float, read: float, previous: tuple[float, float] | None) -> float | None:
    """Hit ratio of the increase since ``previous``; None when undefined."""
    if previous is None:
        return None
    d_hit, d_read = hit - previous[0], read - previous[1]
    if d_hit < 0 or d_read < 0 or d_hit + d_read <= 0:
        return None
    return d_hit / (d_hit + d_read)


class CacheHitJob(PostgresJob):
    collector = "postgres_cache_hit"

    def __init__(
        self, pool: PostgresPool, target: str, interval: float, timeout: float, notices: Notices
    ) -> None:
        super().__init__(pool, target, interval, timeout, notices)
        self._totals = RunningTotals[str]()
        self._previous: dict[str, tuple[float, float]] = {}

    async def collect(self) -> Sequence[Sample]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(DATABASE_SQL)
            databases = await cur.fetchall()
            cur = await conn.execute(STATIO_SQL)
            statio = await cur.fetchone()
        assert statio is not None
        t = self.target
        out: list[Sample] = []
        for row in databases:
            hit, read = self._totals.update(row["datname"], (row["hit"], row["read"]))
            out.append(BLKS_HIT(hit, row["datname"], target=t))
            out.append(BLKS_READ(read, row["datname"], target=t))
        self._totals.retain({row["datname"] for row in databases})
        for scope, prefix in (("heap", "heap"), ("index", "idx")):
            hit, read = statio[f"{prefix}_hit"], statio[f"{prefix}_read"]
            ratio = delta_ratio(hit, read, self._previous.get(scope))
            self._previous[scope] = (hit, read)
            if ratio is not None:
                out.append(HIT_RATIO(ratio, scope, target=t))
        return out

"""Transaction ID wraparound age per database and running autovacuum workers.

Exposition::

    pg_database_xid_age{target="primary",datname="app"} 183422.0
    pg_database_mxid_age{target="primary",datname="app"} 12.0
    pg_database_xid_wraparound_ratio{target="primary",datname="app"} 0.0000854
    pg_autovacuum_workers{target="primary"} 1.0
    pg_autovacuum_wraparound_workers{target="primary"} 0.0
    pg_autovacuum_running_seconds{target="primary"} 4230.0

``pg_database_xid_wraparound_ratio`` is ``age(datfrozenxid)`` over 2^31, the point at
which PostgreSQL stops assigning transaction IDs. ``pg_autovacuum_running_seconds`` is
the run time of the longest-running autovacuum worker (0 when none runs); the worker
series need pg_read_all_stats (without it they are left out and the reason is logged).
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors.postgres.job import PostgresJob
from collectors.postgres.notices import READ_ALL_STATS_SQL
from monitor.kernel.snapshot import Sample, gauge

XID_AGE = gauge(
    "pg_database_xid_age", "age(datfrozenxid): transactions since the last freeze", "datname"
)
MXID_AGE = gauge("pg_database_mxid_age", "mxid_age(datminmxid) of the database", "datname")
WRAPAROUND_RATIO = gauge(
    "pg_database_xid_wraparound_ratio",
    "age(datfrozenxid) over 2^31, where PostgreSQL stops assigning transaction IDs",
    "datname",
)
AUTOVACUUM_WORKERS = gauge("pg_autovacuum_workers", "Autovacuum workers running")
AUTOVACUUM_WRAPAROUND = gauge(
    "pg_autovacuum_wraparound_workers", "Autovacuum workers running to prevent wraparound"
)
AUTOVACUUM_SECONDS = gauge(
    "pg_autovacuum_running_seconds", "Run time of the longest-running autovacuum worker"
)

XID_LIMIT = 2.0**31

DATABASES_SQL = """
SELECT datname, age(datfrozenxid)::float8 AS xid_age, mxid_age(datminmxid)::float8 AS mxid_age
FROM pg_database ORDER BY datname
"""
AUTOVACUUM_SQL = f"""
SELECT count(*) AS workers,
  count(*) FILTER (WHERE query LIKE '%to prevent wraparound%') AS wraparound,
  coalesce(extract(epoch FROM max(now() - xact_start)), 0)::float8 AS longest,
  {READ_ALL_STATS_SQL} AS can_read_all
FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'
"""


class VacuumJob(PostgresJob):
    collector = "postgres_vacuum"

    async def collect(self) -> Sequence[Sample]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(DATABASES_SQL)
            databases = await cur.fetchall()
            cur = await conn.execute(AUTOVACUUM_SQL)
            av = await cur.fetchone()
        assert av is not None
        t = self.target
        out: list[Sample] = []
        for row in databases:
            out.append(XID_AGE(row["xid_age"], row["datname"], target=t))
            out.append(MXID_AGE(row["mxid_age"], row["datname"], target=t))
            out.append(WRAPAROUND_RATIO(row["xid_age"] / XID_LIMIT, row["datname"], target=t))
        hidden = "autovacuum workers are hidden and not exported"
        if self._notices.privilege("autovacuum", av["can_read_all"], hidden):
            out += [
                AUTOVACUUM_WORKERS(av["workers"], target=t),
                AUTOVACUUM_WRAPAROUND(av["wraparound"], target=t),
                AUTOVACUUM_SECONDS(av["longest"], target=t),
            ]
        return out

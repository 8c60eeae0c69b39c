"""Whether each PostgreSQL server answers, and its role.

Exposition::

    pg_up{target="primary"} 1.0
    pg_in_recovery{target="primary"} 0.0
    pg_server_version_num{target="primary"} 150018.0
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors.postgres.connection import PostgresPool
from monitor.kernel.snapshot import Sample, gauge
from monitor.kernel.source import CollectorJob

PG_UP = gauge("pg_up", "1 if the PostgreSQL server answered the last collection, else 0")
PG_IN_RECOVERY = gauge("pg_in_recovery", "1 if the server is a standby (in recovery), else 0")
PG_SERVER_VERSION = gauge("pg_server_version_num", "server_version_num of the server")

STATUS_SQL = (
    "SELECT pg_is_in_recovery() AS in_recovery, "
    "current_setting('server_version_num')::int AS version_num"
)


class StatusJob(CollectorJob):
    collector = "postgres"

    def __init__(self, pool: PostgresPool, target: str, interval: float, timeout: float) -> None:
        self._pool = pool
        self.target = target
        self.interval = interval
        self.timeout = timeout

    async def collect(self) -> Sequence[Sample]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(STATUS_SQL)
            row = await cur.fetchone()
        assert row is not None
        return (
            PG_UP(1, target=self.target),
            PG_IN_RECOVERY(1 if row["in_recovery"] else 0, target=self.target),
            PG_SERVER_VERSION(row["version_num"], target=self.target),
        )

    def failure_samples(self) -> Sequence[Sample]:
        return (PG_UP(0, target=self.target),)

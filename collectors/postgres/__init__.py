"""PostgreSQL collectors: one :class:`PostgresSource` per configured server."""

from __future__ import annotations

from collections.abc import Sequence

from collectors.base import CheckResult, CollectorJob, Source
from collectors.postgres.connection import PostgresPool
from collectors.postgres.status import STATUS_SQL, StatusJob
from monitor.config import Config
from monitor.config.postgres import PostgresTarget
from monitor.runner import describe_error
from monitor.timing import job_timeout


class PostgresSource(Source):
    kind = "postgres"

    def __init__(self, target: PostgresTarget, default_interval: float) -> None:
        self.name = target.name
        self.target = target
        self.pool = PostgresPool(target)
        self.interval = target.interval or default_interval
        self.timeout = target.timeout or job_timeout(self.interval)

    def jobs(self) -> Sequence[CollectorJob]:
        return [StatusJob(self.pool, self.name, self.interval, self.timeout)]

    async def check(self) -> CheckResult:
        item = f"postgres/{self.name}"
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(STATUS_SQL)
                row = await cur.fetchone()
        except Exception as exc:
            return CheckResult(item, False, describe_error(exc))
        assert row is not None
        role = "standby" if row["in_recovery"] else "primary"
        return CheckResult(item, True, f"PostgreSQL {row['version_num']}, {role}")

    async def close(self) -> None:
        await self.pool.close()


def sources(config: Config) -> list[Source]:
    return [PostgresSource(t, config.interval) for t in config.targets.postgres]

"""One custom query on one PostgreSQL target: its job, and its line in ``monitor check``.

``monitor check`` plans the query with ``EXPLAIN`` and declares (never fetches) a cursor
for it, inside the same READ ONLY transaction and timeouts as a run: a missing table or
column, a syntax error, a missing parameter or a metric naming a column the query does
not return all fail there, before the daemon starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors.postgres.connection import PostgresPool
from collectors.queries.config import QueryConfig
from collectors.queries.job import QueryJob
from collectors.queries.postgres import NUMERIC_TYPES, Explained, Limits, PostgresQueryRunner
from monitor.kernel.redact import describe_error
from monitor.kernel.source import CheckResult, CollectorJob, Source
from monitor.kernel.timing import job_timeout

DEFAULT_LOCK_TIMEOUT = 1.0


def limits_for(query: QueryConfig, interval: float) -> Limits:
    timeout = query.timeout or job_timeout(interval)
    lock = query.lock_timeout or min(DEFAULT_LOCK_TIMEOUT, timeout)
    return Limits(statement_timeout=timeout, lock_timeout=lock)


class QuerySource(Source):
    kind = "query"

    def __init__(
        self, query: QueryConfig, target: str, pool: PostgresPool, default_interval: float
    ) -> None:
        self.query = query
        self.target = target
        self.name = f"{query.name}/{target}"
        self.pool = pool
        interval = query.interval or default_interval
        self.runner = PostgresQueryRunner(pool)
        self.job = QueryJob(query, target, self.runner, interval, limits_for(query, interval))

    def jobs(self) -> Sequence[CollectorJob]:
        return (self.job,)

    async def check(self) -> CheckResult:
        item = f"query/{self.name}"
        try:
            explained = await self.runner.explain(
                self.query.sql, dict(self.query.params) or None, limits=self.job.limits
            )
        except Exception as exc:
            return CheckResult(item, False, f"EXPLAIN failed: {describe_error(exc)}")
        problems, warnings = self._compare(explained)
        if problems:
            return CheckResult(item, False, "; ".join(problems), tuple(warnings))
        names = ", ".join(name for name, _ in explained.columns)
        detail = (
            f"EXPLAIN ok: ~{explained.plan_rows:g} rows, cost {explained.total_cost:g}; "
            f"columns {names}"
        )
        return CheckResult(item, True, detail, tuple(warnings))

    def _compare(self, explained: Explained) -> tuple[list[str], list[str]]:
        types = dict(explained.columns)
        problems: list[str] = []
        warnings: list[str] = []
        for metric in self.query.metrics:
            missing = [c for c in metric.columns() if c not in types]
            if missing:
                problems.append(
                    f"metric {metric.name}: column(s) {', '.join(missing)} not returned "
                    f"by the query (it returns {', '.join(types) or 'nothing'})"
                )
                continue
            values = [c for c in metric.columns() if c not in metric.labels]
            for column in values:
                if types[column] not in NUMERIC_TYPES:
                    warnings.append(
                        f"metric {metric.name}: value column {column} is {types[column]}, "
                        "not a number: its samples will be dropped (cast it, e.g. ::float)"
                    )
        if explained.plan_rows > self.query.max_rows:
            warnings.append(
                f"the planner expects ~{explained.plan_rows:g} rows, over max_rows "
                f"{self.query.max_rows}: the excess is dropped"
            )
        return problems, warnings

    async def close(self) -> None:
        await self.pool.close()  # shared by the target's queries; closing twice is harmless

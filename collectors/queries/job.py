"""One custom query on one target, as a scheduled collector job.

The job's collector name is ``query:<name>`` and its target the PostgreSQL target, so
``monitor_collector_up{collector="query:signups",target="primary"}`` and ``/healthz``
show each query on its own. A failed run exports only the query's own counters
(``monitor_query_errors_total`` and friends), never the last values of its metrics.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from collectors.queries.config import QueryConfig
from collectors.queries.postgres import Limits, PostgresQueryRunner
from collectors.queries.samples import Drops, MetricReader
from collectors.queries.stats import QueryStats, classify
from monitor.kernel.snapshot import Sample
from monitor.kernel.source import CollectorJob

CLIENT_GRACE = 1.0
"""The run's own deadline is this much longer than the server's statement_timeout, so
the server cancels first and the connection survives a slow query."""


class QueryJob(CollectorJob):
    spread_start = True

    def __init__(
        self,
        query: QueryConfig,
        target: str,
        runner: PostgresQueryRunner,
        interval: float,
        limits: Limits,
    ) -> None:
        self.collector = f"query:{query.name}"
        self.target = target
        self.interval = interval
        self.timeout = limits.statement_timeout + CLIENT_GRACE
        self.query = query
        self.limits = limits
        self._runner = runner
        self._params = dict(query.params) or None
        self._readers = [MetricReader(m, query.name) for m in query.metrics]
        self.stats = QueryStats(query.name, target, tuple(m.name for m in query.metrics))
        self._started = 0.0

    async def collect(self) -> Sequence[Sample]:
        self._started = time.perf_counter()
        try:
            result = await self._runner.fetch(
                self.query.sql, self._params, max_rows=self.query.max_rows, limits=self.limits
            )
            drops: Drops = Counter()
            samples: list[Sample] = []
            for reader in self._readers:
                samples.extend(reader.read(self.target, result.columns, result.rows, drops))
        except Exception as exc:
            self.stats.failure(classify(exc), time.perf_counter() - self._started)
            raise
        self.stats.success(
            time.perf_counter() - self._started, len(result.rows), result.excess, drops
        )
        samples.extend(self.stats.samples())
        return samples

    def on_timeout(self) -> None:
        self.stats.failure("timeout", time.perf_counter() - self._started)

    def failure_samples(self) -> Sequence[Sample]:
        return self.stats.samples()

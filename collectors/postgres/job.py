"""The common shape of a PostgreSQL collector job: the shared pool, schedule and notices."""

from __future__ import annotations

from collectors.postgres.connection import PostgresPool
from collectors.postgres.notices import Notices
from monitor.kernel.source import CollectorJob


class PostgresJob(CollectorJob):
    """A job reading one target through the source's pool."""

    def __init__(
        self, pool: PostgresPool, target: str, interval: float, timeout: float, notices: Notices
    ) -> None:
        self._pool = pool
        self.target = target
        self.interval = interval
        self.timeout = timeout
        self._notices = notices

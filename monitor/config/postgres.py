"""Configuration of PostgreSQL targets."""

from __future__ import annotations

from monitor.config.types import Duration, Model, Name, PostgresUrl


class PostgresTarget(Model):
    """One PostgreSQL server (primary or follower) to watch.

    ``url`` is a libpq URL; ``postgres://`` is accepted and ``sslmode=require`` is added
    for any host that is not loopback.
    """

    name: Name
    url: PostgresUrl
    interval: Duration | None = None
    """Collection interval of the cheap checks; defaults to the global ``interval``."""
    timeout: Duration | None = None
    """Hard deadline of one collection; defaults to 80% of the interval, at most 10s."""
    connect_timeout: Duration = 5.0
    statement_timeout: Duration = 5.0
    max_connections: int = 2
    """Size of the monitor's own connection pool to this server."""

    def dsn(self) -> str:
        return self.url.get_secret_value()

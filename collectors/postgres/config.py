"""Configuration of PostgreSQL targets.

Each collector group (``statements``, ``activity``, ``replication``, ``cache_hit``,
``vacuum``, ``diagnose``) is a separate job with its own ``interval`` and ``timeout``, so an
expensive check never delays the cheap ones::

    targets:
      postgres:
        - name: primary
          url: ${DATABASE_URL}
          statements: {top_n: 50, include_query_text: true}
          diagnose: {interval: 30m, timeout: 2m}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from monitor.kernel.config.types import Duration, Model, Name, PostgresUrl


class JobConfig(Model):
    """Schedule of one collector group; unset values fall back to the target's."""

    enabled: bool = True
    interval: Duration | None = None
    timeout: Duration | None = None


class StatementsConfig(JobConfig):
    """pg_stat_statements: the top ``top_n`` queries by execution time get their own series."""

    top_n: int = Field(default=100, ge=0, le=100_000)
    """Statements exported with their own ``queryid``; the rest are summed into ``other``."""
    include_query_text: bool = False
    """Also export ``pg_stat_statements_query_info`` with a normalised, truncated query text."""
    query_text_max_length: int = Field(default=120, ge=16, le=4096)
    databases: Literal["auto", "all", "current"] = "auto"
    """Whose statements: ``all`` databases of the cluster (pg_stat_statements holds them
    all), only the ``current`` one the target connects to, or ``auto``: ``current`` when
    another target connects to the same server (host and port), else ``all``. One target
    per database of a shared cluster then exports each statement once, and each target
    reads only its own database's rows."""


class VacuumConfig(JobConfig):
    """Transaction ID wraparound age and running autovacuum workers (cheap, every minute)."""

    interval: Duration | None = 60.0


class DiagnoseConfig(JobConfig):
    """The slow ``pg:diagnose`` checks: sequences, unused indexes, table and index bloat."""

    interval: Duration | None = 600.0
    timeout: Duration | None = 60.0
    max_series: int = Field(default=20, ge=1, le=1000)
    """At most this many series per check (the worst ones)."""
    unused_index_min_bytes: int = Field(default=1_048_576, ge=0)
    """Unused indexes smaller than this are not reported."""
    bloat_min_bytes: int = Field(default=10_485_760, ge=0)
    """Tables and indexes wasting less than this (estimated) are not reported."""


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
    """Size of the monitor's own connection pool to this server (the slow ``diagnose``
    group opens one more connection of its own while it runs)."""
    query_connections: int = Field(default=2, ge=1, le=20)
    """Connections for the custom ``queries`` on this server, apart from the pool above,
    so a slow business query never delays the built-in collectors."""
    statements: StatementsConfig = Field(default_factory=StatementsConfig)
    activity: JobConfig = Field(default_factory=JobConfig)
    replication: JobConfig = Field(default_factory=JobConfig)
    cache_hit: JobConfig = Field(default_factory=JobConfig)
    vacuum: VacuumConfig = Field(default_factory=VacuumConfig)
    diagnose: DiagnoseConfig = Field(default_factory=DiagnoseConfig)

    def dsn(self) -> str:
        return self.url.get_secret_value()

"""PostgreSQL collectors: one :class:`PostgresSource` per configured server.

Each collector group is a job with its own interval and timeout (see
:mod:`collectors.postgres.config`): ``postgres`` (pg_up), ``postgres_statements``,
``postgres_activity``, ``postgres_replication``, ``postgres_cache_hit``,
``postgres_vacuum`` and the slow ``postgres_diagnose``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from psycopg.conninfo import conninfo_to_dict

from collectors.postgres.activity import ActivityJob
from collectors.postgres.cachehit import CacheHitJob
from collectors.postgres.config import JobConfig, PostgresTarget
from collectors.postgres.connection import Connection, PostgresPool
from collectors.postgres.diagnose import (
    UNREADABLE_SEQUENCES_SQL,
    UNREADABLE_TABLES_SQL,
    DiagnoseJob,
    unreadable_sequences_warning,
    unreadable_tables_warning,
)
from collectors.postgres.notices import Notices
from collectors.postgres.replication import ReplicationJob
from collectors.postgres.statements import EXTENSION_SQL, StatementsJob, parse_version
from collectors.postgres.status import STATUS_SQL, StatusJob
from collectors.postgres.vacuum import VacuumJob
from monitor.kernel.redact import describe_error
from monitor.kernel.source import CheckResult, CollectorJob, Source
from monitor.kernel.timing import job_timeout

PRIVILEGES_SQL = """
SELECT current_user AS role,
  pg_has_role(current_user, 'pg_monitor', 'USAGE') AS monitor,
  pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats
"""


class PostgresSource(Source):
    kind = "postgres"

    def __init__(
        self, target: PostgresTarget, default_interval: float, shares_server: bool = False
    ) -> None:
        self.name = target.name
        self.target = target
        self.shares_server = shares_server
        """Another target connects to the same server (see ``statements.databases``)."""
        self.pool = PostgresPool(target)
        self.interval = target.interval or default_interval
        self.timeout = target.timeout or job_timeout(self.interval)
        self.notices = Notices(target.name)
        self._jobs: list[CollectorJob] | None = None
        self._diagnose: DiagnoseJob | None = None

    def _schedule(self, group: JobConfig) -> tuple[float, float]:
        if group.interval is None:
            interval = self.interval
            return interval, group.timeout or self.timeout
        return group.interval, group.timeout or job_timeout(group.interval)

    def jobs(self) -> Sequence[CollectorJob]:
        if self._jobs is not None:
            return self._jobs
        t, pool, name, notices = self.target, self.pool, self.name, self.notices
        jobs: list[CollectorJob] = [StatusJob(pool, name, self.interval, self.timeout)]
        if t.statements.enabled:
            interval, timeout = self._schedule(t.statements)
            jobs.append(
                StatementsJob(
                    pool,
                    name,
                    interval,
                    timeout,
                    notices,
                    top_n=t.statements.top_n,
                    include_query_text=t.statements.include_query_text,
                    query_text_max_length=t.statements.query_text_max_length,
                    current_database=self._current_database_only(),
                )
            )
        if t.activity.enabled:
            jobs.append(ActivityJob(pool, name, *self._schedule(t.activity), notices))
        if t.replication.enabled:
            jobs.append(ReplicationJob(pool, name, *self._schedule(t.replication), notices))
        if t.cache_hit.enabled:
            jobs.append(CacheHitJob(pool, name, *self._schedule(t.cache_hit), notices))
        if t.vacuum.enabled:
            jobs.append(VacuumJob(pool, name, *self._schedule(t.vacuum), notices))
        if t.diagnose.enabled:
            self._diagnose = DiagnoseJob(t, *self._schedule(t.diagnose), notices, t.diagnose)
            jobs.append(self._diagnose)
        self._jobs = jobs
        return jobs

    def _current_database_only(self) -> bool:
        scope = self.target.statements.databases
        return scope == "current" or (scope == "auto" and self.shares_server)

    async def check(self) -> CheckResult:
        item = f"postgres/{self.name}"
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(STATUS_SQL)
                row = await cur.fetchone()
                assert row is not None
                warnings = await self._check_warnings(conn)
        except Exception as exc:
            return CheckResult(item, False, describe_error(exc))
        role = "standby" if row["in_recovery"] else "primary"
        for message in self.notices.messages():
            if message not in warnings:
                warnings.append(message)
        return CheckResult(item, True, f"PostgreSQL {row['version_num']}, {role}", tuple(warnings))

    async def _check_warnings(self, conn: Connection) -> list[str]:
        warnings: list[str] = []
        priv = await (await conn.execute(PRIVILEGES_SQL)).fetchone()
        assert priv is not None
        if not priv["monitor"]:
            missing = "pg_monitor" if priv["read_all_stats"] else "pg_monitor (pg_read_all_stats)"
            warnings.append(
                f"role {priv['role']} lacks {missing}: other sessions' state, standbys' lag "
                "and other users' queryids are hidden and not exported "
                "(GRANT pg_monitor TO ...; see deploy/sql/monitoring-role.sql)"
            )
        if self.target.statements.enabled:
            ext = await (await conn.execute(EXTENSION_SQL)).fetchone()
            if ext is None:
                warnings.append(
                    "pg_stat_statements is not installed in the connected database: no "
                    "statement metrics (CREATE EXTENSION pg_stat_statements)"
                )
            elif parse_version(ext["version"]) < (1, 8):
                warnings.append(
                    f"pg_stat_statements {ext['version']} is old (total_time, no toplevel): "
                    "ALTER EXTENSION pg_stat_statements UPDATE"
                )
        if self.target.diagnose.enabled:
            seqs = await (await conn.execute(UNREADABLE_SEQUENCES_SQL)).fetchone()
            if seqs is not None and seqs["n"]:
                warnings.append(unreadable_sequences_warning(seqs["n"]))
            tables = await (await conn.execute(UNREADABLE_TABLES_SQL)).fetchone()
            if tables is not None and tables["n"]:
                warnings.append(unreadable_tables_warning(tables["n"]))
        return warnings

    async def close(self) -> None:
        await self.pool.close()
        if self._diagnose is not None:
            await self._diagnose.close()


def server_of(target: PostgresTarget) -> tuple[str, str]:
    """The (host, port) ``target`` connects to, as its URL spells them."""
    params = conninfo_to_dict(target.dsn())
    return str(params.get("host") or ""), str(params.get("port") or "5432")


def sources(targets: Sequence[PostgresTarget], interval: float) -> list[Source]:
    servers = [server_of(t) for t in targets]
    sharing = Counter(servers)
    return [
        PostgresSource(t, interval, sharing[s] > 1) for t, s in zip(targets, servers, strict=True)
    ]

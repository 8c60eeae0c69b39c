"""Connections, long transactions and blocked sessions against the real primary."""

from __future__ import annotations

import asyncio
import time

import psycopg
from structlog.testing import capture_logs
from support import wait_for

from collectors.postgres import PostgresSource
from monitor.app.demo.testbed import TestBed
from monitor.kernel.snapshot import Sample
from tests.collectors.postgres.pgtools import (
    job_of,
    make_source,
    new_database,
    sql,
    value,
    weak_role,
)


async def collect(source: PostgresSource) -> list[Sample]:
    return list(await job_of(source, "postgres_activity").collect())


async def test_counts_by_state_exclude_the_monitor_itself(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    db = new_database(pg_bed.primary)
    source = make_source(pg_bed.primary.dsn(db))
    sources.append(source)
    samples = await collect(source)
    # only the monitor is connected to db, and its own session is not counted
    assert value(samples, "pg_connections", datname=db, state="active") == 0
    assert value(samples, "pg_connections", datname=db, state="idle") == 0

    async with (
        await psycopg.AsyncConnection.connect(pg_bed.primary.dsn(db), autocommit=True) as a,
        await psycopg.AsyncConnection.connect(pg_bed.primary.dsn(db), autocommit=True) as b,
        await psycopg.AsyncConnection.connect(pg_bed.primary.dsn(db)) as c,
    ):
        await a.execute("SELECT 1")
        await b.execute("SELECT 1")
        await c.execute("SELECT 1")  # not autocommit: now idle in transaction
        samples = await collect(source)
        assert value(samples, "pg_connections", datname=db, state="idle") == 2
        assert value(samples, "pg_connections", datname=db, state="idle_in_transaction") == 1
        assert value(samples, "pg_connections", datname=db, state="active") == 0
        await c.rollback()

    # the monitor's pooled session is idle between polls, never idle in transaction
    rows = sql(
        pg_bed.primary,
        "SELECT state FROM pg_stat_activity WHERE application_name = 'app-monitor' "
        "AND datname = %s",
        params=(db,),
    )
    assert rows == [("idle",)]


async def test_slots_and_utilisation(pg_bed: TestBed, sources: list[PostgresSource]) -> None:
    source = make_source(pg_bed.primary.dsn())
    sources.append(source)
    samples = await collect(source)
    # the test bed runs max_connections = 50 with 3 superuser-reserved slots
    assert value(samples, "pg_connections_max") == 47
    clients = sql(
        pg_bed.primary,
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
    )[0][0]
    ratio = value(samples, "pg_connections_utilization_ratio")
    assert ratio is not None
    # the test's own query connection comes and goes: within one slot
    assert abs(ratio * 47 - (clients - 1 + 1)) <= 1


async def test_a_transaction_of_short_queries_is_an_old_transaction(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    source = make_source(pg_bed.primary.dsn())
    sources.append(source)
    async with await psycopg.AsyncConnection.connect(pg_bed.primary.dsn()) as conn:
        started = time.monotonic()
        await conn.execute("SELECT 1")  # opens the transaction
        while time.monotonic() - started < 1.5:
            await conn.execute("SELECT 1")  # short queries, each ~instant
            await asyncio.sleep(0.05)  # the workload's pace, not synchronisation
        samples = await collect(source)
        oldest = value(samples, "pg_oldest_transaction_seconds")
        longest = value(samples, "pg_longest_query_seconds")
        idle = value(samples, "pg_oldest_idle_in_transaction_seconds")
        assert oldest is not None and oldest >= 1.5
        assert longest is not None and longest < 0.5  # the query_start filter would miss it
        assert idle is not None and idle < 0.5
        await conn.rollback()
    samples = await collect(source)
    assert value(samples, "pg_oldest_transaction_seconds") == 0


async def test_idle_in_transaction_age(pg_bed: TestBed, sources: list[PostgresSource]) -> None:
    source = make_source(pg_bed.primary.dsn())
    sources.append(source)
    async with await psycopg.AsyncConnection.connect(pg_bed.primary.dsn()) as conn:
        await conn.execute("SELECT 1")
        started = time.monotonic()

        async def idle_long_enough() -> bool:
            got = value(await collect(source), "pg_oldest_idle_in_transaction_seconds")
            assert got is not None and got <= time.monotonic() - started + 0.5
            return got >= 1.0

        await wait_for(idle_long_enough, timeout=10, interval=0.2)
        await conn.rollback()


async def test_a_held_access_exclusive_lock_shows_a_blocked_session(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    db = new_database(pg_bed.primary)
    sql(pg_bed.primary, "CREATE TABLE accounts (id int)", db=db)
    source = make_source(pg_bed.primary.dsn(db))
    sources.append(source)
    assert value(await collect(source), "pg_blocked_sessions") == 0
    async with (
        await psycopg.AsyncConnection.connect(pg_bed.primary.dsn(db)) as migration,
        await psycopg.AsyncConnection.connect(pg_bed.primary.dsn(db), autocommit=True) as app,
    ):
        await migration.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        blocked = asyncio.create_task(app.execute("SELECT count(*) FROM accounts"))

        async def one_blocked() -> bool:
            return value(await collect(source), "pg_blocked_sessions") == 1

        await wait_for(one_blocked, timeout=10, interval=0.1)
        # a relation lock: no transactionid wait, which the pg-extras join would need
        rows = sql(
            pg_bed.primary,
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'",
        )
        assert rows == [(0,)]
        await migration.rollback()
        await blocked
    assert value(await collect(source), "pg_blocked_sessions") == 0


async def test_without_pg_monitor_ages_are_left_out_with_one_warning(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    role = weak_role(pg_bed.primary)
    source = make_source(pg_bed.primary.dsn(user=role))
    sources.append(source)
    async with await psycopg.AsyncConnection.connect(pg_bed.primary.dsn()) as other:
        await other.execute("SELECT 1")  # another user's session, idle in transaction
        with capture_logs() as logs:
            for _ in range(3):
                samples = await collect(source)
        await other.rollback()
    for name in (
        "pg_oldest_transaction_seconds",
        "pg_oldest_idle_in_transaction_seconds",
        "pg_longest_query_seconds",
    ):
        assert value(samples, name) is None, name  # not a misleading 0
    unknown = value(samples, "pg_connections", datname="postgres", state="unknown")
    assert unknown is not None and unknown >= 1  # the hidden session still counts
    assert value(samples, "pg_connections_max") == 47
    warnings = [e for e in logs if "pg_monitor" in e["event"]]
    assert len(warnings) == 1

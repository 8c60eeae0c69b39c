"""The safety rails of custom queries on the real test-bed PostgreSQL: timeouts that
hold nobody else up, a READ ONLY transaction, row and series caps, no stale values."""

from __future__ import annotations

import asyncio
import time

import psycopg
from conftest import make_config

from collectors.postgres import PostgresSource
from monitor.kernel.runner import JobRunner
from monitor.kernel.snapshot_store import SnapshotStore
from tests.collectors.queries.conftest import Make
from tests.collectors.queries.qtools import one, query_doc, value

GAUGE = {"name": "app_value", "value": "v"}


def errors(store: SnapshotStore, query: str, reason: str) -> float | None:
    samples = list(store.samples())
    return value(samples, "monitor_query_errors_total", query=query, reason=reason)


async def test_a_slow_query_times_out_and_delays_nobody(
    make_sources: Make, business_db: str
) -> None:
    slow, fast = make_sources(
        query_doc("slow", "SELECT 1 AS v FROM pg_sleep(5)", GAUGE, timeout="500ms"),
        query_doc("fast", "SELECT 2 AS v", {"name": "app_fast", "value": "v"}),
    )
    config = make_config(targets={"postgres": [{"name": "primary", "url": business_db}]})
    builtin = PostgresSource(config.targets.postgres[0], config.interval)
    store = SnapshotStore()
    runner = JobRunner(store)
    try:
        started = time.perf_counter()
        results = await asyncio.gather(
            runner.run(slow.job),
            *(runner.run(job) for job in (fast.job, *builtin.jobs())),
        )
        elapsed = time.perf_counter() - started
    finally:
        await builtin.close()
    slow_snap, fast_snap, *builtin_snaps = results
    assert not slow_snap.ok
    assert "statement timeout" in (slow_snap.error or "")
    assert slow_snap.duration < 1.5  # the server cancelled it at 500 ms
    assert elapsed < 3.0, "nothing waited for the 5 s sleep"
    assert fast_snap.ok and fast_snap.duration < 0.5
    assert all(s.ok for s in builtin_snaps), [s.error for s in builtin_snaps if not s.ok]
    assert max(s.duration for s in builtin_snaps) < 1.0
    assert errors(store, "slow", "timeout") == 1
    assert value(list(store.samples()), "app_value") is None
    # the server cancelled the statement: the connection survived and runs the next query
    assert (await runner.run(fast.job)).ok


async def test_the_run_deadline_backs_up_the_server_timeout(make_sources: Make) -> None:
    """Should the server not cancel in time (a network stall), the run's own deadline
    ends it, the stuck connection is dropped, and the counter says timeout."""
    source = one(make_sources(query_doc("wait", "SELECT 1 AS v FROM pg_sleep(5)", GAUGE)))
    # a deadline shorter than the server's timeout: only the client can end it
    source.job.timeout = 0.3
    store = SnapshotStore()
    snapshot = await JobRunner(store).run(source.job)
    assert not snapshot.ok and snapshot.error == "timed out after 0.3s"
    assert errors(store, "wait", "timeout") == 1
    source.job.timeout = 10.0
    source.job.query = source.job.query.model_copy(update={"sql": "SELECT 3 AS v"})
    assert (await JobRunner(store).run(source.job)).ok  # a fresh connection replaces it


async def test_lock_timeout(make_sources: Make, business_db: str) -> None:
    source = one(
        make_sources(
            query_doc(
                "locked",
                "SELECT count(*) AS v FROM readings",
                GAUGE,
                timeout="5s",
                lock_timeout="200ms",
            )
        )
    )
    async with await psycopg.AsyncConnection.connect(business_db) as holder:
        await holder.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        store = SnapshotStore()
        snapshot = await JobRunner(store).run(source.job)
        await holder.rollback()
    assert not snapshot.ok and "lock timeout" in (snapshot.error or "")
    assert snapshot.duration < 2.0
    assert errors(store, "locked", "lock_timeout") == 1


async def test_a_query_that_writes_is_refused(make_sources: Make, business_db: str) -> None:
    writes, sequence = make_sources(
        query_doc("writes", "SELECT write_audit() AS v", GAUGE),
        query_doc("sequence", "SELECT nextval('ticket_seq') AS v", {"name": "app_t", "value": "v"}),
    )
    store = SnapshotStore()
    runner = JobRunner(store)
    for source in (writes, sequence):
        snapshot = await runner.run(source.job)
        assert not snapshot.ok
        assert "read-only transaction" in (snapshot.error or "")
    assert errors(store, "writes", "read_only") == 1
    assert errors(store, "sequence", "read_only") == 1
    with psycopg.connect(business_db) as conn:
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (0,)
        assert conn.execute("SELECT last_value, is_called FROM ticket_seq").fetchone() == (1, False)


async def test_a_statement_that_is_not_a_select_is_refused(make_sources: Make) -> None:
    source = one(make_sources(query_doc("update", "UPDATE jobs SET state = 'x'", GAUGE)))
    store = SnapshotStore()
    assert not (await JobRunner(store).run(source.job)).ok
    assert errors(store, "update", "query") == 1


async def test_a_hundred_thousand_rows_are_capped(make_sources: Make) -> None:
    source = one(
        make_sources(
            query_doc(
                "huge",
                "SELECT i AS k, i AS v FROM generate_series(1, 100000) i",
                {"name": "app_huge", "labels": ["k"], "value": "v", "max_series": 500},
                max_rows=2000,
            )
        )
    )
    samples = await source.job.collect()
    exported = [s for s in samples if s.name == "app_huge"]
    assert len(exported) == 500
    assert value(samples, "monitor_query_rows", query="huge") == 2000
    assert value(samples, "monitor_query_rows_dropped_total", query="huge") == 98_000
    dropped = value(
        samples, "monitor_query_samples_dropped_total", metric="app_huge", reason="max_series"
    )
    assert dropped == 1500
    # counted again on the next run: the counters accumulate
    samples = await source.job.collect()
    assert value(samples, "monitor_query_rows_dropped_total", query="huge") == 196_000


async def test_the_default_caps_hold_for_a_hundred_thousand_rows(make_sources: Make) -> None:
    source = one(
        make_sources(
            query_doc(
                "huge",
                "SELECT i AS k, i AS v FROM generate_series(1, 100000) i",
                {"name": "app_huge", "labels": ["k"], "value": "v"},
            )
        )
    )
    started = time.perf_counter()
    samples = await source.job.collect()
    assert time.perf_counter() - started < 5
    assert len([s for s in samples if s.name == "app_huge"]) == 1000
    assert value(samples, "monitor_query_rows", query="huge") == 10_000
    assert value(samples, "monitor_query_rows_dropped_total", query="huge") == 90_000


async def test_a_failing_query_exports_no_stale_values(
    make_sources: Make, business_db: str
) -> None:
    with psycopg.connect(business_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS flaky (v int)")
        conn.execute("INSERT INTO flaky VALUES (7)")
        source = one(make_sources(query_doc("flaky", "SELECT v FROM flaky", GAUGE)))
        store = SnapshotStore()
        runner = JobRunner(store)
        assert (await runner.run(source.job)).ok
        assert value(list(store.samples()), "app_value") == 7
        conn.execute("ALTER TABLE flaky RENAME TO flaky_gone")
        try:
            snapshot = await runner.run(source.job)
        finally:
            conn.execute("ALTER TABLE flaky_gone RENAME TO flaky")
    assert not snapshot.ok and 'relation "flaky" does not exist' in (snapshot.error or "")
    samples = list(store.samples())
    assert value(samples, "app_value") is None
    assert value(samples, "monitor_query_errors_total", query="flaky", reason="query") == 1
    assert (await runner.run(source.job)).ok  # the connection was kept and works
    assert value(list(store.samples()), "app_value") == 7


async def test_a_missing_column_fails_the_run(make_sources: Make) -> None:
    source = one(make_sources(query_doc("typo", "SELECT 1 AS value", GAUGE)))
    store = SnapshotStore()
    snapshot = await JobRunner(store).run(source.job)
    assert not snapshot.ok and "column(s) v not in the result" in (snapshot.error or "")
    assert errors(store, "typo", "columns") == 1


async def test_the_queries_use_their_own_connection_budget(make_sources: Make) -> None:
    """Four slow queries on a budget of two: at most two run at once."""
    sources = make_sources(
        *(
            query_doc(
                f"q{i}", "SELECT 1 AS v FROM pg_sleep(0.4)", {"name": f"app_q{i}", "value": "v"}
            )
            for i in range(4)
        ),
        target={"query_connections": 2},
    )
    started = time.perf_counter()
    await asyncio.gather(*(s.job.collect() for s in sources))
    elapsed = time.perf_counter() - started
    assert 0.8 <= elapsed < 3.0

"""The PostgreSQL source as a whole: job schedules, privileges in `monitor check`, the daemon."""

from __future__ import annotations

import pytest
from conftest import make_config, run_daemon
from support import parse_exposition, wait_for

from collectors.postgres import PostgresSource
from monitor.app.demo.testbed import TestBed
from monitor.app.once import collect_once, format_check
from monitor.kernel.config.loading import ConfigError
from monitor.kernel.snapshot_store import SnapshotStore
from tests.collectors.postgres.pgtools import (
    install_monitoring_role,
    make_source,
    new_database,
    run_many,
    sql,
    weak_role,
)

DSN = "postgresql://monitor@127.0.0.1:5432/app"


def schedule(source: PostgresSource) -> dict[str, tuple[float, float]]:
    return {j.collector: (j.interval, j.timeout) for j in source.jobs()}


def test_each_group_is_a_job_with_its_own_schedule() -> None:
    assert schedule(make_source(DSN)) == {
        "postgres": (15.0, 10.0),
        "postgres_statements": (15.0, 10.0),
        "postgres_activity": (15.0, 10.0),
        "postgres_replication": (15.0, 10.0),
        "postgres_cache_hit": (15.0, 10.0),
        "postgres_vacuum": (60.0, 10.0),
        "postgres_diagnose": (600.0, 60.0),
    }
    custom = make_source(
        DSN,
        interval="5s",
        statements={"interval": "30s", "top_n": 10},
        replication={"timeout": "2s"},
        diagnose={"interval": "30m", "timeout": "2m"},
        cache_hit={"enabled": False},
    )
    got = schedule(custom)
    assert got["postgres"] == (5.0, 4.0)
    assert got["postgres_statements"] == (30.0, 10.0)
    assert got["postgres_replication"] == (5.0, 2.0)
    assert got["postgres_diagnose"] == (1800.0, 120.0)
    assert "postgres_cache_hit" not in got


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"statements": {"top_n": -1}}, r"statements\.top_n: .*greater than or equal to 0"),
        ({"statements": {"query_text_max_length": 2}}, r"statements\.query_text_max_length"),
        ({"statements": {"topn": 5}}, r"statements\.topn"),
        ({"diagnose": {"interval": 600}}, r"diagnose\.interval: .*needs a unit"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        make_source(DSN, **options)


async def test_a_slow_check_never_delays_the_cheap_ones(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    source = make_source(pg_bed.primary.dsn(), diagnose={"timeout": "1ms"})
    sources.append(source)
    store = SnapshotStore()
    snapshots = {s.collector: s for s in await collect_once([source], store)}
    assert not snapshots["postgres_diagnose"].ok
    assert "timed out" in (snapshots["postgres_diagnose"].error or "")
    for collector, snapshot in snapshots.items():
        if collector != "postgres_diagnose":
            assert snapshot.ok, (collector, snapshot.error)


async def test_check_warns_about_a_role_without_pg_monitor(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    role = weak_role(pg_bed.primary)
    source = make_source(pg_bed.primary.dsn(user=role))
    sources.append(source)
    result = await source.check()
    assert result.ok  # reachable: a warning, not a failure
    lines = format_check(result)
    warn = [line for line in lines if line.startswith("warn") and "pg_monitor" in line]
    assert len(warn) == 1 and role in warn[0]


async def test_the_shipped_role_is_enough(pg_bed: TestBed, sources: list[PostgresSource]) -> None:
    db = new_database(pg_bed.primary)
    sql(pg_bed.primary, "CREATE TABLE t (id serial PRIMARY KEY)", db=db)
    role = install_monitoring_role(pg_bed.primary, db)
    run_many(pg_bed.primary, db, "SELECT count(*) FROM t WHERE id > %s", [1], 3)
    source = make_source(pg_bed.primary.dsn(db, user=role), statements={"top_n": 100_000})
    sources.append(source)
    check = await source.check()
    assert check.ok
    # only the bloat estimate wants more (pg_stats of tables the role may not read)
    assert [w for w in check.warnings if "bloat" not in w] == []
    snapshots = await collect_once([source], SnapshotStore())
    assert all(s.ok for s in snapshots), [(s.collector, s.error) for s in snapshots]
    samples = [x for s in snapshots for x in s.samples]
    names = {x.name for x in samples}
    assert {
        "pg_oldest_transaction_seconds",
        "pg_replication_lag_bytes",
        "pg_autovacuum_running_seconds",
        "pg_sequence_used_ratio",
    } <= names
    # another user's statements keep their queryid
    queryids = {
        x.labels["queryid"]
        for x in samples
        if x.name == "pg_stat_statements_calls_total" and x.labels["datname"] == db
    }
    assert queryids - {"other"}
    assert [m for m in source.notices.messages() if "bloat" not in m] == []


async def test_no_counter_goes_backwards_downstream(pg_bed: TestBed) -> None:
    db = new_database(pg_bed.primary)
    sql(pg_bed.primary, "CREATE TABLE w (id int PRIMARY KEY)", db=db)
    sql(pg_bed.primary, "INSERT INTO w SELECT generate_series(1, 100)", db=db)
    config = make_config(
        interval="1s",
        targets={
            "postgres": [{"name": "primary", "url": pg_bed.primary.dsn(db), "statements": {}}]
        },
    )
    seen: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    checked = 0

    async with run_daemon(config) as running:

        async def scrape() -> None:
            nonlocal checked
            text = (await running.get("/metrics")).text
            for key, val in parse_exposition(text).items():
                name = key[0]
                if name.startswith(("pg_stat_statements_", "pg_blks_")) and name.endswith("_total"):
                    assert val >= seen.get(key, 0.0), f"{key} went from {seen[key]} to {val}"
                    seen[key] = val
                    checked += 1

        def successes() -> int:
            statuses = running.daemon.store.statuses()
            return min(
                s.runs["success"]
                for s in statuses
                if s.collector in ("postgres_statements", "postgres_cache_hit")
            )

        async def runs(n: int) -> None:
            target = successes() + n

            async def done() -> bool:
                await scrape()
                return successes() >= target

            await wait_for(done, timeout=20, interval=0.2)

        run_many(pg_bed.primary, db, "SELECT * FROM w WHERE id = %s", [1], 20)
        await runs(3)
        sql(pg_bed.primary, "SELECT pg_stat_statements_reset()", db=db)
        sql(pg_bed.primary, "SELECT pg_stat_reset()", db=db)
        run_many(pg_bed.primary, db, "SELECT * FROM w WHERE id = %s", [1], 3)
        await runs(3)
    assert checked > 100

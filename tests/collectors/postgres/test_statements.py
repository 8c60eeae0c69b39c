"""pg_stat_statements against real servers: PG 15 (extension 1.7 and 1.10) and PG 18 (1.12)."""

from __future__ import annotations

import psycopg
from structlog.testing import capture_logs

from collectors.postgres import PostgresSource
from collectors.postgres.statements import StatementsJob
from monitor.app.demo.testbed import PgServer, TestBed
from monitor.kernel.snapshot import Sample, find
from tests.collectors.postgres.pgtools import (
    job_of,
    make_source,
    new_database,
    queryid_of,
    run_many,
    sql,
    value,
    weak_role,
)

ALL = 100_000
"""A top N that exports every statement, for exact per-statement assertions."""


def statements(source: PostgresSource) -> StatementsJob:
    job = job_of(source, "postgres_statements")
    assert isinstance(job, StatementsJob)
    return job


def series(samples: list[Sample], name: str, db: str) -> dict[str, float]:
    return {s.labels["queryid"]: s.value for s in find(samples, name, datname=db)}


def db_calls(server: PgServer, db: str) -> float:
    rows = sql(
        server,
        "SELECT sum(calls) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
        " WHERE d.datname = %s",
        params=(db,),
    )
    return float(rows[0][0])


def setup_workload(bed: TestBed, db: str) -> str:
    sql(bed.primary, "CREATE TABLE wl (id int PRIMARY KEY, note text)", db=db)
    sql(bed.primary, "INSERT INTO wl SELECT g, 'n' || g FROM generate_series(1, 50) g", db=db)
    run_many(bed.primary, db, "SELECT note FROM wl WHERE id = %s", [lambda i: i + 1], 7)
    return queryid_of(bed.primary, db, "SELECT note FROM wl WHERE id = $1")


async def test_known_workload_shows_its_call_counts(
    versioned_bed: TestBed, sources: list[PostgresSource]
) -> None:
    db = new_database(versioned_bed.primary)
    queryid = setup_workload(versioned_bed, db)
    source = make_source(versioned_bed.primary.dsn(), statements={"top_n": ALL})
    sources.append(source)
    samples = list(await statements(source).collect())
    assert value(samples, "pg_stat_statements_available") == 1
    assert value(samples, "pg_stat_statements_calls_total", datname=db, queryid=queryid) == 7
    assert value(samples, "pg_stat_statements_rows_total", datname=db, queryid=queryid) == 7
    exec_s = value(samples, "pg_stat_statements_exec_seconds_total", datname=db, queryid=queryid)
    assert exec_s is not None and 0 < exec_s < 1
    hits = value(samples, "pg_stat_statements_shared_blks_hit_total", datname=db, queryid=queryid)
    assert hits is not None and hits >= 7  # each lookup reads at least the index and heap
    for name in ("blk_read_seconds", "blk_write_seconds", "shared_blks_read"):
        got = value(samples, f"pg_stat_statements_{name}_total", datname=db, queryid=queryid)
        assert got is not None and got >= 0

    run_many(versioned_bed.primary, db, "SELECT note FROM wl WHERE id = %s", [3], 5)
    samples = list(await statements(source).collect())
    assert value(samples, "pg_stat_statements_calls_total", datname=db, queryid=queryid) == 12


async def test_top_level_and_nested_runs_are_one_series(
    versioned_bed: TestBed, sources: list[PostgresSource]
) -> None:
    server = versioned_bed.primary
    db = new_database(server)
    sql(server, "CREATE TABLE dup (x int)", db=db)
    sql(
        server,
        """CREATE FUNCTION count_dup() RETURNS bigint LANGUAGE plpgsql AS $$
           DECLARE n bigint;
           BEGIN SELECT count(*) INTO n FROM dup WHERE x > 5; RETURN n; END $$""",
        db=db,
    )
    for _ in range(3):
        sql(server, "SELECT count(*) FROM dup WHERE x > 5", db=db)
    for _ in range(2):
        sql(server, "SELECT count_dup()", db=db)
    top = queryid_of(server, db, "SELECT count(*) FROM dup WHERE x > $1", toplevel=True)
    nested = queryid_of(server, db, "SELECT count(*) %FROM dup WHERE x > $1", toplevel=False)
    assert top == nested  # the duplicate the server really produces
    source = make_source(server.dsn(), statements={"top_n": ALL})
    sources.append(source)
    samples = list(await statements(source).collect())
    calls = [s for s in find(samples, "pg_stat_statements_calls_total", queryid=top)]
    assert len(calls) == 1
    assert calls[0].value == 5


async def test_statements_beyond_n_are_summed_in_other(
    solo_bed: TestBed, sources: list[PostgresSource]
) -> None:
    server = solo_bed.primary
    db = new_database(server)
    # statement k has k+1 columns and runs k times with a 50 ms sleep: exec time grows with k
    shapes = {k: "SELECT pg_sleep(0.05)" + "".join(f", {c}" for c in range(k)) for k in range(1, 7)}
    stored = {k: "SELECT pg_sleep($1)" + "".join(f", ${c + 2}" for c in range(k)) for k in shapes}
    for k, text in shapes.items():
        run_many(server, db, text, [], k)
    source = make_source(server.dsn(), statements={"top_n": 2})
    sources.append(source)
    samples = list(await statements(source).collect())
    calls = series(samples, "pg_stat_statements_calls_total", db)
    expected_6 = queryid_of(server, db, stored[6])
    expected = {expected_6: 6.0, queryid_of(server, db, stored[5]): 5.0}
    assert {q: v for q, v in calls.items() if q != "other"} == expected
    # other holds the remainder: statements 1-4 and the extension's own set-up statements
    assert calls["other"] == db_calls(server, db) - 6 - 5
    assert calls["other"] >= 1 + 2 + 3 + 4
    exec_other = series(samples, "pg_stat_statements_exec_seconds_total", db)["other"]
    assert 0.5 <= exec_other < 2.0  # ten 50 ms sleeps

    # statement 1 becomes the hottest: promoted; the others keep feeding other
    run_many(server, db, shapes[1], [], 9)
    run_many(server, db, shapes[2], [], 1)
    samples = list(await statements(source).collect())
    first_other = calls["other"]
    calls = series(samples, "pg_stat_statements_calls_total", db)
    q1 = queryid_of(server, db, stored[1])
    assert calls[q1] == 10
    # never decreases although statement 1 left it; gains statement 2's new call
    assert calls["other"] == first_other + 1
    # snapshot sums are not totals (rates are): statement 5's 5 calls left with its series,
    # statement 1's first call is in other and, as history, in its new series
    assert calls["other"] + calls[q1] + calls[expected_6] == db_calls(server, db) - 5 + 1


async def test_counters_survive_pg_stat_statements_reset(
    versioned_bed: TestBed, sources: list[PostgresSource]
) -> None:
    server = versioned_bed.primary
    db = new_database(server)
    queryid = setup_workload(versioned_bed, db)
    source = make_source(server.dsn(), statements={"top_n": ALL})
    sources.append(source)
    before = list(await statements(source).collect())
    assert value(before, "pg_stat_statements_calls_total", datname=db, queryid=queryid) == 7

    sql(server, "SELECT pg_stat_statements_reset()", db=db)
    # more calls after the reset than before it: only stats_reset (1.9+) tells
    run_many(server, db, "SELECT note FROM wl WHERE id = %s", [1], 10)
    after = list(await statements(source).collect())
    assert value(after, "pg_stat_statements_calls_total", datname=db, queryid=queryid) == 17
    old = {(s.name, s.label_values): s.value for s in before if s.spec.kind == "counter"}
    for s in after:
        if (s.name, s.label_values) in old:
            assert s.value >= old[(s.name, s.label_values)], f"{s.name} {s.labels} went back"


async def test_extension_1_7_on_pg15_then_updated(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    server = pg_bed.primary
    db = new_database(server, extension=False)
    sql(server, "CREATE EXTENSION pg_stat_statements VERSION '1.7'", db=db)
    queryid = setup_workload(pg_bed, db)
    source = make_source(server.dsn(db), statements={"top_n": ALL})
    sources.append(source)
    samples = list(await statements(source).collect())
    assert value(samples, "pg_stat_statements_calls_total", datname=db, queryid=queryid) == 7
    assert value(samples, "pg_stat_statements_dealloc_total") is None  # no info view in 1.7
    check = await source.check()
    assert check.ok and any("1.7" in w and "ALTER EXTENSION" in w for w in check.warnings)

    sql(server, "ALTER EXTENSION pg_stat_statements UPDATE", db=db)
    run_many(server, db, "SELECT note FROM wl WHERE id = %s", [1], 2)
    samples = list(await statements(source).collect())
    assert value(samples, "pg_stat_statements_calls_total", datname=db, queryid=queryid) == 9
    assert value(samples, "pg_stat_statements_dealloc_total") == 0


async def test_extension_in_another_schema(pg_bed: TestBed, sources: list[PostgresSource]) -> None:
    server = pg_bed.primary
    db = new_database(server, extension=False)
    sql(server, "CREATE SCHEMA heroku_ext", db=db)
    sql(server, "CREATE EXTENSION pg_stat_statements SCHEMA heroku_ext", db=db)
    queryid = setup_workload(pg_bed, db)
    source = make_source(server.dsn(db), statements={"top_n": ALL})
    sources.append(source)
    samples = list(await statements(source).collect())
    assert value(samples, "pg_stat_statements_calls_total", datname=db, queryid=queryid) == 7


async def test_missing_extension_is_a_warning_not_a_failure(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    server = pg_bed.primary
    db = new_database(server, extension=False)
    source = make_source(server.dsn(db))
    sources.append(source)
    job = statements(source)
    with capture_logs() as logs:
        for _ in range(3):
            samples = list(await job.collect())
            assert [s.name for s in samples] == ["pg_stat_statements_available"]
            assert samples[0].value == 0
    status = list(await job_of(source, "postgres").collect())
    assert value(status, "pg_up") == 1
    logged = [e for e in logs if "pg_stat_statements is not installed" in e["event"]]
    assert len(logged) == 1 and logged[0]["log_level"] == "warning"
    check = await source.check()
    assert check.ok
    assert any("pg_stat_statements is not installed" in w for w in check.warnings)

    sql(server, "CREATE EXTENSION pg_stat_statements", db=db)
    samples = list(await job.collect())
    assert value(samples, "pg_stat_statements_available") == 1


async def test_hidden_queryids_are_counted_in_other_with_a_warning(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    server = pg_bed.primary
    db = new_database(server)
    setup_workload(pg_bed, db)  # run by postgres: invisible to the weak role
    role = weak_role(server)
    source = make_source(server.dsn(user=role), statements={"top_n": ALL})
    sources.append(source)
    samples = list(await statements(source).collect())
    calls = series(samples, "pg_stat_statements_calls_total", db)
    assert list(calls) == ["other"]
    assert calls["other"] >= 7
    assert any("queryid" in m and "pg_monitor" in m for m in source.notices.messages())


async def test_query_text_is_an_optional_info_metric(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    server = pg_bed.primary
    db = new_database(server)
    queryid = setup_workload(pg_bed, db)
    plain = make_source(server.dsn(), statements={"top_n": ALL})
    sources.append(plain)
    assert not find(await statements(plain).collect(), "pg_stat_statements_query_info")

    source = make_source(
        server.dsn(),
        statements={"top_n": ALL, "include_query_text": True, "query_text_max_length": 24},
    )
    sources.append(source)
    samples = list(await statements(source).collect())
    [info] = find(samples, "pg_stat_statements_query_info", datname=db, queryid=queryid)
    assert info.labels["query"] == "SELECT note FROM wl WHE…"


async def test_evictions_never_make_counters_go_backwards(
    solo_bed: TestBed, sources: list[PostgresSource]
) -> None:
    server = solo_bed.primary
    server.append_conf({"pg_stat_statements.max": 100})
    server.stop()
    server.start()
    db = new_database(server)
    source = make_source(server.dsn(), statements={"top_n": 10})
    sources.append(source)
    job = statements(source)
    seen: dict[tuple[str, tuple[str, ...]], float] = {}
    with psycopg.connect(server.dsn(db), autocommit=True) as conn:
        for round_ in range(4):
            for k in range(60):
                columns = "".join(f", {c}" for c in range(k + round_ * 60))
                for _ in range(1 + k % 3):
                    conn.execute(f"SELECT 1{columns}")
            for s in await job.collect():
                if s.spec.kind == "counter":
                    key = (s.name, s.label_values)
                    assert s.value >= seen.get(key, 0.0), f"{s.name} {s.labels} went back"
                    seen[key] = s.value
    dealloc = seen[("pg_stat_statements_dealloc_total", ("primary",))]
    assert dealloc > 0
    assert job.totals.tracked < 400


async def test_targets_sharing_a_server_export_only_their_own_database(
    pg_bed: TestBed,
) -> None:
    """Two targets on one server (``databases: auto``) each read and export only the
    statements of the database they connect to; one target alone exports them all."""
    from collectors.postgres import sources as postgres_sources
    from monitor.app.config import validate

    server = pg_bed.primary
    first, second = new_database(server), new_database(server)
    for db in (first, second):
        setup_workload(pg_bed, db)

    def build(*dbs: str, **statements: object) -> list[PostgresSource]:
        targets = [
            {"name": db, "url": server.dsn(db), "statements": {"top_n": ALL, **statements}}
            for db in dbs
        ]
        config = validate(
            {"targets": {"postgres": targets}, "state": {"url": "sqlite:///:memory:"}},
            environ={},
        )
        built = postgres_sources(config.targets.postgres, config.interval)
        assert all(isinstance(s, PostgresSource) for s in built)
        return [s for s in built if isinstance(s, PostgresSource)]

    async def datnames(source: PostgresSource) -> set[str]:
        try:
            samples = await statements(source).collect()
        finally:
            await source.close()
        return {s.labels["datname"] for s in find(list(samples), "pg_stat_statements_calls_total")}

    pair = build(first, second)
    assert [await datnames(s) for s in pair] == [{first}, {second}]
    [alone] = build(first)
    assert {first, second} <= await datnames(alone)  # the whole cluster, as before
    [forced] = build(first, databases="current")
    assert await datnames(forced) == {first}
    everything = build(first, second, databases="all")
    for source in everything:
        assert {first, second} <= await datnames(source)

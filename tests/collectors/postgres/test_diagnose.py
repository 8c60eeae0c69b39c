"""pg:diagnose checks against the real primary: sequences, unused indexes, bloat, vacuum."""

from __future__ import annotations

from support import wait_for

from collectors.postgres import PostgresSource
from collectors.postgres.diagnose import sequence_used_ratio
from monitor.app.demo.testbed import TestBed
from monitor.kernel.snapshot import Sample, find
from tests.collectors.postgres.pgtools import (
    install_monitoring_role,
    job_of,
    make_source,
    new_database,
    sql,
    value,
    weak_role,
)

INT_MAX = 2**31 - 1
LOW = {"unused_index_min_bytes": 0, "bloat_min_bytes": 0, "max_series": 50}


async def diagnose(source: PostgresSource) -> list[Sample]:
    return list(await job_of(source, "postgres_diagnose").collect())


def legacy_schema(bed: TestBed, db: str) -> None:
    """An old-Rails table: an integer id fed by a bigint sequence, near the integer limit."""
    sql(bed.primary, "CREATE SEQUENCE legacy_id_seq", db=db)  # AS bigint by default
    sql(
        bed.primary,
        "CREATE TABLE legacy (id integer NOT NULL DEFAULT nextval('legacy_id_seq'), v text)",
        db=db,
    )
    sql(bed.primary, "SELECT setval('legacy_id_seq', 2100000000)", db=db)
    sql(bed.primary, "INSERT INTO legacy (v) VALUES ('x')", db=db)
    sql(bed.primary, "CREATE TABLE modern (id bigint GENERATED ALWAYS AS IDENTITY, v text)", db=db)
    sql(bed.primary, "INSERT INTO modern (v) SELECT 'y' FROM generate_series(1, 10)", db=db)
    sql(bed.primary, "CREATE TABLE fresh (id serial PRIMARY KEY)", db=db)


def test_ratio_is_against_the_column_type() -> None:
    big = 2**63 - 1
    assert sequence_used_ratio("integer", 1, 1, big, INT_MAX) == 1.0
    assert sequence_used_ratio("bigint", 1, 1, big, INT_MAX) < 1e-9  # the pgwatch view
    assert sequence_used_ratio("smallint", 1, 1, big, 16384) == 16384 / 32767
    assert sequence_used_ratio("integer", 1, 1, 1000, 500) == 0.5  # the sequence's own max
    assert sequence_used_ratio("integer", -1, -(2**31), -1, -(2**30)) == 0.5  # descending
    assert sequence_used_ratio("integer", 1, 1, big, None) == 0.0  # never used


async def test_an_int_column_near_its_limit_is_flagged(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    db = new_database(pg_bed.primary)
    legacy_schema(pg_bed, db)
    source = make_source(pg_bed.primary.dsn(db), diagnose=LOW)
    sources.append(source)
    samples = await diagnose(source)
    legacy = value(
        samples,
        "pg_sequence_used_ratio",
        datname=db,
        sequence="public.legacy_id_seq",
        column="public.legacy.id",
    )
    assert legacy == 2100000001 / INT_MAX  # the next insert is 93% of the way to failing
    modern = value(samples, "pg_sequence_used_ratio", sequence="public.modern_id_seq")
    assert modern == 10 / (2**63 - 1)
    fresh = value(samples, "pg_sequence_used_ratio", sequence="public.fresh_id_seq")
    assert fresh == 0.0  # never used: known to be 0
    assert value(samples, "pg_sequences_unreadable", datname=db) == 0
    ratios = [s.value for s in find(samples, "pg_sequence_used_ratio")]
    assert ratios == sorted(ratios, reverse=True)  # the worst first


async def test_unreadable_sequences_are_counted_and_warned_not_zero(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    db = new_database(pg_bed.primary)
    legacy_schema(pg_bed, db)
    role = weak_role(pg_bed.primary)
    source = make_source(pg_bed.primary.dsn(db, user=role), diagnose=LOW)
    sources.append(source)
    samples = await diagnose(source)
    assert not find(samples, "pg_sequence_used_ratio")
    assert value(samples, "pg_sequences_unreadable", datname=db) == 3
    assert any("sequences are not readable" in m for m in source.notices.messages())
    check = await source.check()
    assert check.ok and any("sequences are not readable" in w for w in check.warnings)

    # the shipped role script grants SELECT on the sequences: now they are measured
    monitor = install_monitoring_role(pg_bed.primary, db)
    source = make_source(pg_bed.primary.dsn(db, user=monitor), diagnose=LOW)
    sources.append(source)
    samples = await diagnose(source)
    assert value(samples, "pg_sequences_unreadable", datname=db) == 0
    legacy = value(samples, "pg_sequence_used_ratio", sequence="public.legacy_id_seq")
    assert legacy is not None and legacy > 0.9


async def test_unused_indexes(pg_bed: TestBed, sources: list[PostgresSource]) -> None:
    db = new_database(pg_bed.primary)
    sql(pg_bed.primary, "CREATE TABLE u (id int PRIMARY KEY, a int, b int)", db=db)
    sql(pg_bed.primary, "INSERT INTO u SELECT g, g, g FROM generate_series(1, 20000) g", db=db)
    sql(pg_bed.primary, "CREATE INDEX u_a ON u (a)", db=db)
    sql(pg_bed.primary, "CREATE INDEX u_b ON u (b)", db=db)
    sql(pg_bed.primary, "ANALYZE u", db=db)
    sql(pg_bed.primary, "SELECT * FROM u WHERE b = 5", db=db)  # u_b is used
    source = make_source(pg_bed.primary.dsn(db), diagnose=LOW)
    sources.append(source)

    async def only_u_a() -> list[Sample]:
        samples = await diagnose(source)
        unused = find(samples, "pg_unused_index_bytes", datname=db)
        return samples if [s.labels["index"] for s in unused] == ["public.u_a"] else []

    samples = await wait_for(only_u_a, timeout=10, interval=0.2)
    size = sql(pg_bed.primary, "SELECT pg_relation_size('u_a')", db=db)[0][0]
    assert value(samples, "pg_unused_index_bytes", index="public.u_a", table="public.u") == size
    assert value(samples, "pg_unused_indexes", datname=db) == 1  # not the primary key

    big = make_source(pg_bed.primary.dsn(db), diagnose={**LOW, "unused_index_min_bytes": size + 1})
    sources.append(big)
    assert value(await diagnose(big), "pg_unused_indexes", datname=db) == 0


async def test_bloated_table_and_index(pg_bed: TestBed, sources: list[PostgresSource]) -> None:
    db = new_database(pg_bed.primary)
    for name in ("bloated", "tidy"):
        sql(pg_bed.primary, f"CREATE TABLE {name} (id int PRIMARY KEY, v text)", db=db)
        sql(
            pg_bed.primary,
            f"INSERT INTO {name} SELECT g, md5(g::text) FROM generate_series(1, 50000) g",
            db=db,
        )
    sql(pg_bed.primary, "DELETE FROM bloated WHERE id % 10 <> 0", db=db)
    sql(pg_bed.primary, "VACUUM ANALYZE bloated", db=db)
    sql(pg_bed.primary, "ANALYZE tidy", db=db)
    source = make_source(pg_bed.primary.dsn(db), diagnose=LOW)
    sources.append(source)
    samples = await diagnose(source)
    ratio = value(samples, "pg_table_bloat_ratio", datname=db, table="public.bloated")
    wasted = value(samples, "pg_table_bloat_bytes", datname=db, table="public.bloated")
    pages = sql(pg_bed.primary, "SELECT relpages FROM pg_class WHERE relname = 'bloated'", db=db)
    assert ratio is not None and 7 <= ratio <= 13  # 90% of the rows are gone
    assert wasted is not None and wasted >= 0.8 * pages[0][0] * 8192
    tidy = value(samples, "pg_table_bloat_ratio", datname=db, table="public.tidy")
    assert tidy is None or tidy < 1.3  # the estimate is close for a packed table
    index = value(samples, "pg_index_bloat_ratio", datname=db, index="public.bloated_pkey")
    assert index is not None and index >= 5
    tidy_index = value(samples, "pg_index_bloat_ratio", datname=db, index="public.tidy_pkey")
    assert tidy_index is None or tidy_index < 1.5

    strict = make_source(pg_bed.primary.dsn(db), diagnose={**LOW, "bloat_min_bytes": 10**9})
    sources.append(strict)
    assert not find(await diagnose(strict), "pg_table_bloat_ratio")


async def test_bloat_needs_readable_tables_and_says_so(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    db = new_database(pg_bed.primary)
    sql(pg_bed.primary, "CREATE TABLE secret (id int, v text)", db=db)
    sql(pg_bed.primary, "INSERT INTO secret SELECT g, 'v' FROM generate_series(1, 1000) g", db=db)
    sql(pg_bed.primary, "ANALYZE secret", db=db)
    role = weak_role(pg_bed.primary)
    source = make_source(pg_bed.primary.dsn(db, user=role), diagnose=LOW)
    sources.append(source)
    samples = await diagnose(source)
    assert not find(samples, "pg_table_bloat_ratio")
    assert any("bloat estimate skips 1 tables" in m for m in source.notices.messages())


async def test_xid_age_per_database(pg_bed: TestBed, sources: list[PostgresSource]) -> None:
    db = new_database(pg_bed.primary)
    source = make_source(pg_bed.primary.dsn())
    sources.append(source)
    samples = list(await job_of(source, "postgres_vacuum").collect())
    direct = sql(
        pg_bed.primary, "SELECT age(datfrozenxid) FROM pg_database WHERE datname = %s", params=(db,)
    )[0][0]
    age = value(samples, "pg_database_xid_age", datname=db)
    assert age is not None and direct - 50 <= age <= direct
    assert value(samples, "pg_database_xid_wraparound_ratio", datname=db) == age / 2**31
    assert value(samples, "pg_database_mxid_age", datname=db) is not None
    assert {s.labels["datname"] for s in find(samples, "pg_database_xid_age")} >= {
        db,
        "template0",
        "postgres",
    }


async def test_long_running_autovacuum(solo_bed: TestBed, sources: list[PostgresSource]) -> None:
    server = solo_bed.primary
    sql(server, "ALTER SYSTEM SET autovacuum_naptime = 1")
    sql(server, "SELECT pg_reload_conf()")
    sql(server, "CREATE TABLE churn (id int, v text)")
    sql(server, "INSERT INTO churn SELECT g, md5(g::text) FROM generate_series(1, 200000) g")
    source = make_source(server.dsn())
    sources.append(source)
    idle = list(await job_of(source, "postgres_vacuum").collect())
    assert value(idle, "pg_autovacuum_running_seconds") == 0
    # a crawling autovacuum: every page costs more than the budget of a 100 ms nap
    sql(
        server,
        "ALTER TABLE churn SET (autovacuum_vacuum_cost_delay = 100, "
        "autovacuum_vacuum_cost_limit = 1, autovacuum_vacuum_threshold = 0, "
        "autovacuum_vacuum_scale_factor = 0)",
    )
    sql(server, "DELETE FROM churn")

    async def running_a_while() -> bool:
        samples = list(await job_of(source, "postgres_vacuum").collect())
        seconds = value(samples, "pg_autovacuum_running_seconds")
        return value(samples, "pg_autovacuum_workers") == 1 and seconds is not None and seconds > 1

    await wait_for(running_a_while, timeout=60, interval=0.5)

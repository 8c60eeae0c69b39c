"""Cache hit counters and interval ratios against the real primary."""

from __future__ import annotations

from support import wait_for_sync

from collectors.postgres import PostgresSource
from collectors.postgres.cachehit import delta_ratio
from monitor.app.demo.testbed import TestBed
from monitor.kernel.snapshot import Sample, find
from tests.collectors.postgres.pgtools import job_of, make_source, new_database, sql, value


async def collect(source: PostgresSource) -> list[Sample]:
    return list(await job_of(source, "postgres_cache_hit").collect())


def statio(bed: TestBed, db: str) -> tuple[float, float, float, float]:
    row = sql(
        bed.primary,
        "SELECT sum(heap_blks_hit), sum(heap_blks_read), sum(idx_blks_hit), sum(idx_blks_read)"
        " FROM pg_statio_user_tables",
        db=db,
    )[0]
    return tuple(float(v or 0) for v in row)  # type: ignore[return-value]


def wait_flushed(bed: TestBed, db: str, *, inserted: int = 0, index_scans: int = 0) -> None:
    """Wait until the server's statistics include the test's own statements.

    Each ``sql()`` call runs in a backend of its own, which flushes its statistics as it
    exits, after the client has already gone: without this wait the collector and the
    test's own reading can see different amounts of work.
    """
    query = (
        "SELECT coalesce(sum(n_tup_ins), 0) >= %s AND coalesce(sum(idx_scan), 0) >= %s"
        " FROM pg_stat_user_tables"
    )
    wait_for_sync(lambda: sql(bed.primary, query, db=db, params=(inserted, index_scans))[0][0])


def test_delta_ratio_is_absent_without_reads_or_after_a_reset() -> None:
    assert delta_ratio(100, 10, None) is None  # first run
    assert delta_ratio(100, 10, (100, 10)) is None  # nothing happened: 0/0
    assert delta_ratio(50, 10, (100, 10)) is None  # went backwards: stats reset
    assert delta_ratio(190, 20, (100, 10)) == 0.9
    assert delta_ratio(190, 10, (100, 10)) == 1.0  # all hits: a real 1, not a default


async def test_counters_move_between_polls_on_one_connection(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    db = new_database(pg_bed.primary)
    source = make_source(pg_bed.primary.dsn(db))
    sources.append(source)
    first = await collect(source)
    datnames = {s.labels["datname"] for s in find(first, "pg_blks_hit_total")}
    assert db in datnames and "" not in datnames  # the shared-objects row is skipped
    before = value(first, "pg_blks_hit_total", datname=db)
    sql(pg_bed.primary, "CREATE TABLE c (x int)", db=db)
    sql(pg_bed.primary, "INSERT INTO c SELECT generate_series(1, 1000)", db=db)
    second = await collect(source)  # same pooled autocommit connection: a fresh view
    after = value(second, "pg_blks_hit_total", datname=db)
    assert before is not None and after is not None and after > before


async def test_ratios_come_from_the_last_interval(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    db = new_database(pg_bed.primary)
    # no autovacuum/analyze reading h behind the test's back between the two readings
    sql(pg_bed.primary, "CREATE TABLE h (id int PRIMARY KEY, v text)", db=db)
    sql(pg_bed.primary, "ALTER TABLE h SET (autovacuum_enabled = false)", db=db)
    sql(
        pg_bed.primary,
        "INSERT INTO h SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
        db=db,
    )
    source = make_source(pg_bed.primary.dsn(db))
    sources.append(source)
    wait_flushed(pg_bed, db, inserted=5000)
    first = await collect(source)
    assert not find(first, "pg_cache_hit_ratio")  # no previous interval yet
    s1 = statio(pg_bed, db)
    for i in range(1, 200):
        sql(pg_bed.primary, "SELECT v FROM h WHERE id = %s", db=db, params=(i * 13,))
    wait_flushed(pg_bed, db, inserted=5000, index_scans=199)

    second = await collect(source)
    s2 = statio(pg_bed, db)
    heap = (s2[0] - s1[0]) / ((s2[0] - s1[0]) + (s2[1] - s1[1]))
    index = (s2[2] - s1[2]) / ((s2[2] - s1[2]) + (s2[3] - s1[3]))
    assert value(second, "pg_cache_hit_ratio", scope="heap") == heap
    assert value(second, "pg_cache_hit_ratio", scope="index") == index

    third = await collect(source)  # no reads at all since: absent, not 0 or 1
    assert not find(third, "pg_cache_hit_ratio")


async def test_counters_never_go_backwards_after_pg_stat_reset(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    db = new_database(pg_bed.primary)
    sql(pg_bed.primary, "CREATE TABLE r (x int)", db=db)
    sql(pg_bed.primary, "INSERT INTO r SELECT generate_series(1, 2000)", db=db)
    source = make_source(pg_bed.primary.dsn(db))
    sources.append(source)
    before = value(await collect(source), "pg_blks_hit_total", datname=db)
    sql(pg_bed.primary, "SELECT pg_stat_reset()", db=db)
    sql(pg_bed.primary, "SELECT count(*) FROM r", db=db)
    after_samples = await collect(source)
    after = value(after_samples, "pg_blks_hit_total", datname=db)
    assert before is not None and after is not None and after > before
    assert not find(after_samples, "pg_cache_hit_ratio", scope="heap")  # reset interval

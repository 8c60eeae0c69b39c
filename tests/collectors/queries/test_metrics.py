"""Custom queries against the real test-bed PostgreSQL: each metric type, labels, NULLs,
counter resets, histograms from bucket columns, bind parameters."""

from __future__ import annotations

import psycopg
from support import parse_exposition

from monitor.app.once import collect_once
from monitor.kernel.exposition import Exposition
from monitor.kernel.snapshot_store import SnapshotStore
from tests.collectors.queries.conftest import Make
from tests.collectors.queries.qtools import names, one, query_doc, value

JOBS_BY_QUEUE = (
    "SELECT queue, count(*) AS n, max(priority) AS top_priority,"
    " extract(epoch FROM now() - min(created_at)) AS oldest"
    " FROM jobs WHERE state = 'pending' GROUP BY queue"
)


async def test_gauge_per_label_set(make_sources: Make) -> None:
    source = one(
        make_sources(
            query_doc(
                "pending",
                JOBS_BY_QUEUE,
                {
                    "name": "app_jobs_pending",
                    "help": "Pending jobs",
                    "labels": ["queue"],
                    "value": "n",
                },
                {"name": "app_jobs_oldest_seconds", "labels": ["queue"], "value": "oldest"},
            )
        )
    )
    samples = await source.job.collect()
    assert value(samples, "app_jobs_pending", queue="mail", target="primary") == 2
    assert value(samples, "app_jobs_pending", queue="billing") == 1
    assert value(samples, "app_jobs_pending", queue="done") is None
    oldest = value(samples, "app_jobs_oldest_seconds", queue="mail")
    assert oldest is not None and oldest >= 29
    assert value(samples, "monitor_query_rows", query="pending") == 2
    assert value(samples, "monitor_query_errors_total", query="pending", reason="timeout") == 0
    duration = value(samples, "monitor_query_duration_seconds", query="pending")
    assert duration is not None and 0 < duration < 5


async def test_null_value_skips_the_sample_and_is_counted(make_sources: Make) -> None:
    """mail's pending jobs: priorities 1 and NULL -> max 1; a row whose value is NULL
    (here: the priority of job 2 alone) exports nothing for that label set."""
    source = one(
        make_sources(
            query_doc(
                "priorities",
                "SELECT id::text AS job, priority FROM jobs WHERE state = 'pending' ORDER BY id",
                {"name": "app_job_priority", "labels": ["job"], "value": "priority"},
            )
        )
    )
    samples = await source.job.collect()
    exported = {s.labels["job"]: s.value for s in samples if s.name == "app_job_priority"}
    assert len(exported) == 2  # three pending jobs, one with a NULL priority
    assert sorted(exported.values()) == [1.0, 5.0]
    dropped = value(
        samples,
        "monitor_query_samples_dropped_total",
        query="priorities",
        metric="app_job_priority",
        reason="null",
    )
    assert dropped == 1


async def test_null_label_is_the_empty_string(make_sources: Make) -> None:
    source = one(
        make_sources(
            query_doc(
                "labels",
                "SELECT NULL::text AS region, 3 AS n",
                {"name": "app_by_region", "labels": ["region"], "value": "n"},
            )
        )
    )
    samples = await source.job.collect()
    assert value(samples, "app_by_region", region="") == 3


async def test_counter_going_backwards_is_a_reset(make_sources: Make, business_db: str) -> None:
    with psycopg.connect(business_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO readings VALUES ('orders', 100)"
            " ON CONFLICT (name) DO UPDATE SET value = 100"
        )
        source = one(
            make_sources(
                query_doc(
                    "orders",
                    "SELECT name AS counter, value FROM readings WHERE name = 'orders'",
                    {
                        "name": "app_orders_total",
                        "type": "counter",
                        "labels": ["counter"],
                        "value": "value",
                    },
                )
            )
        )
        readings = []
        for raw in (None, 130, 20, 25):
            if raw is not None:
                conn.execute("UPDATE readings SET value = %s WHERE name = 'orders'", (raw,))
            samples = await source.job.collect()
            readings.append(value(samples, "app_orders_total", counter="orders"))
    # 100, +30, reset: +20 since the reset, +5
    assert readings == [100, 130, 150, 155]


async def test_histogram_from_bucket_columns(make_sources: Make) -> None:
    sql = (
        "SELECT queue,"
        " count(*) FILTER (WHERE age <= 15) AS le_15,"
        " count(*) FILTER (WHERE age <= 60) AS le_60,"
        " count(*) AS n, sum(age) AS total"
        " FROM (VALUES ('billing', 10.0), ('billing', 3600.0), ('mail', 30.0), ('mail', 20.0))"
        " AS j (queue, age)"
        " GROUP BY queue"
    )
    source = one(
        make_sources(
            query_doc(
                "ages",
                sql,
                {
                    "name": "app_job_age_seconds",
                    "type": "histogram",
                    "help": "Age of jobs",
                    "labels": ["queue"],
                    "buckets": [{"le": 15, "column": "le_15"}, {"le": 60, "column": "le_60"}],
                    "count": "n",
                    "sum": "total",
                },
            )
        )
    )
    samples = await source.job.collect()
    bucket = "app_job_age_seconds_bucket"
    # billing: one job 10 s old, one an hour old
    assert value(samples, bucket, queue="billing", le="15.0") == 1
    assert value(samples, bucket, queue="billing", le="60.0") == 1
    assert value(samples, bucket, queue="billing", le="+Inf") == 2
    assert value(samples, "app_job_age_seconds_count", queue="billing") == 2
    assert value(samples, "app_job_age_seconds_sum", queue="billing") == 3610
    # mail: 30 s and 20 s old
    assert value(samples, bucket, queue="mail", le="15.0") == 0
    assert value(samples, bucket, queue="mail", le="60.0") == 2


async def test_histogram_row_that_is_not_cumulative_is_skipped(make_sources: Make) -> None:
    source = one(
        make_sources(
            query_doc(
                "broken",
                "SELECT 'a' AS k, 5 AS b1, 3 AS b2, 5 AS n UNION ALL SELECT 'b', 1, 2, 3",
                {
                    "name": "app_broken",
                    "type": "histogram",
                    "labels": ["k"],
                    "buckets": [{"le": 1, "column": "b1"}, {"le": 2, "column": "b2"}],
                    "count": "n",
                },
            )
        )
    )
    samples = await source.job.collect()
    assert value(samples, "app_broken_count", k="a") is None
    assert value(samples, "app_broken_count", k="b") == 3
    assert "app_broken_sum" not in names(samples)
    reason = "not_cumulative"
    assert (
        value(samples, "monitor_query_samples_dropped_total", metric="app_broken", reason=reason)
        == 1
    )


async def test_info_metric(make_sources: Make) -> None:
    source = one(
        make_sources(
            query_doc(
                "schema",
                "SELECT current_database() AS db, 'v42' AS release",
                {"name": "app_schema_info", "type": "info", "labels": ["db", "release"]},
            )
        )
    )
    (sample,) = [s for s in await source.job.collect() if s.name == "app_schema_info"]
    assert sample.labels["release"] == "v42"
    assert sample.value == 1


async def test_types_and_exposition(make_sources: Make) -> None:
    """Through the store and exposition: TYPE lines, label escaping, times as numbers."""
    sources = make_sources(
        query_doc(
            "mixed",
            "SELECT 'a\"b' AS k, 7::bigint AS c, 1.5::numeric AS g, now() AS t",
            {"name": "app_events_total", "type": "counter", "labels": ["k"], "value": "c"},
            {"name": "app_ratio", "labels": ["k"], "value": "g"},
            {"name": "app_last_seen_timestamp_seconds", "value": "t"},
        )
    )
    store = SnapshotStore()
    (snapshot,) = await collect_once(sources, store)
    assert snapshot.ok, snapshot.error
    text = Exposition(store).render().decode()
    assert "# TYPE app_events_total counter" in text
    parsed = parse_exposition(text)
    assert parsed[("app_events_total", frozenset({("target", "primary"), ("k", 'a"b')}))] == 7
    assert parsed[("app_ratio", frozenset({("target", "primary"), ("k", 'a"b')}))] == 1.5
    seen = parsed[("app_last_seen_timestamp_seconds", frozenset({("target", "primary")}))]
    assert seen > 1_700_000_000


async def test_parameters_are_bound_never_formatted(make_sources: Make, business_db: str) -> None:
    hostile = "mail'; DROP TABLE jobs; --"
    source = one(
        make_sources(
            query_doc(
                "param",
                "SELECT count(*) AS n FROM jobs WHERE queue = %(queue)s AND priority >= %(min)s",
                {"name": "app_param", "value": "n"},
                params={"queue": hostile, "min": 0},
            )
        )
    )
    samples = await source.job.collect()
    assert value(samples, "app_param") == 0  # no queue has that name
    with psycopg.connect(business_db) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (4,)


def test_params_come_from_the_environment_and_sql_is_never_expanded() -> None:
    from monitor.app.config import validate

    doc = {
        "targets": {"postgres": [{"name": "primary", "url": "postgresql://u@localhost/app"}]},
        "queries": [
            query_doc(
                "q",
                "SELECT $$a$$ AS k, %(n)s::int AS v",
                {"name": "app_v", "labels": ["k"], "value": "v"},
                params={"n": "${LIMIT_N:-3}"},
            )
        ],
    }
    config = validate(doc, environ={"LIMIT_N": "9"})
    (query,) = config.queries
    assert query.params == {"n": "9"}
    assert query.sql == "SELECT $$a$$ AS k, %(n)s::int AS v"  # $$ kept, not unescaped

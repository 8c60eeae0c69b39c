"""PostgresReleaseLog against a real PostgreSQL (the test bed's primary): releases
persisted and reloaded by a restarted drain, one row per version whatever the order of
the lines, several writers at once (the web and worker dynos of one app share the
database), a lost connection, and no secret in its errors."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from heroku_drain_support import body, component, exposition
from support import metric, wait_for

from collectors.heroku_logs.release_log import (
    PostgresReleaseLog,
    ReleaseLogError,
    open_release_log,
)
from collectors.heroku_logs.releases import ReleaseEvent
from monitor.app.demo.testbed import TestBed

APP = "shop"


@pytest.fixture
def state_url(pg_bed: TestBed) -> Iterator[str]:
    """A fresh database on the shared test bed, as ``state.url`` would name it."""
    name = f"releases_{uuid.uuid4().hex[:8]}"
    TestBed.run_sql(pg_bed.primary, f"CREATE DATABASE {name}")
    yield pg_bed.primary.dsn(name)
    TestBed.run_sql(pg_bed.primary, f"DROP DATABASE {name} WITH (FORCE)")


def rows(url: str) -> list[tuple[object, ...]]:
    """The table as a plain client sees it."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT app, version, kind, commit_sha, description FROM heroku_releases"
            " ORDER BY app, version"
        ).fetchall()


def test_state_url_chooses_postgres(state_url: str) -> None:
    log = open_release_log(state_url)
    assert isinstance(log, PostgresReleaseLog)
    assert log.description == "postgresql"  # no host, user or password in `monitor check`


async def test_releases_persist_and_reload_after_restart(state_url: str) -> None:
    first = component(PostgresReleaseLog(state_url))
    await first.start()
    first.ingestor.ingest(APP, body("05"), 1.0)
    first.ingestor.ingest(APP, body("05"), 2.0)  # Logplex repeats lines
    await first.flush()
    await first.stop()
    assert rows(state_url) == [
        (APP, 123, "deploy", "60a874b3", "Deploy 60a874b3"),
        (APP, 124, "config", "", "Set FEATURE_CHECKOUT_V2 config vars"),
        (APP, 125, "rollback", "", "Rollback to v123"),
    ]

    # a new process (a dyno restart): the current release is known before any drain line
    second = component(PostgresReleaseLog(state_url))
    await second.start()
    await wait_for(lambda: APP in second.ingestor.releases.latest)
    _, m = exposition(second)
    assert metric(m, "heroku_release_info", app=APP, version="v125", commit="") == 1
    assert metric(m, "heroku_release_version", app=APP) == 125
    assert metric(m, "heroku_release_timestamp_seconds", app=APP) == pytest.approx(
        1796047434.754091
    )
    # the same lines again (a replayed batch): known versions, nothing new
    second.ingestor.ingest(APP, body("05"), 3.0)
    # a newer release (06: v126 of commit 1a2b3c4d) is added
    second.ingestor.ingest(APP, body("06"), 4.0)
    await second.flush()
    await second.stop()
    stored = rows(state_url)
    assert [r[1] for r in stored] == [123, 124, 125, 126]
    assert stored[3][2:4] == ("deploy", "1a2b3c4d")
    assert not any("@" in str(r[4]) for r in stored)  # no user e-mail stored


async def test_dedupe_by_version_keeps_the_first_and_fills_in_what_it_lacked(
    state_url: str,
) -> None:
    log = PostgresReleaseLog(state_url)
    await log.open()
    plain = ReleaseEvent(APP, 7, 1000.0)
    await log.record(plain)
    await log.record(plain)
    # the Deploy line came after the Release line: the row is completed, not duplicated
    await log.record(ReleaseEvent(APP, 7, 1001.0, "deploy", "abcdef12", "Deploy abcdef12"))
    # a later, different story for the same version changes nothing already known
    await log.record(ReleaseEvent(APP, 7, 1002.0, "rollback", "", "Rollback to v3"))
    await log.record(ReleaseEvent("other-app", 7, 5.0))
    assert await log.recent(APP) == [
        ReleaseEvent(APP, 7, 1000.0, "deploy", "abcdef12", "Deploy abcdef12")
    ]
    assert await log.apps() == ["other-app", APP]
    await log.close()
    assert len(rows(state_url)) == 2


async def test_concurrent_writers_on_a_fresh_database(state_url: str) -> None:
    """Four writers (two dynos' worth, each possibly reconnecting) open the empty database
    at once, creating the table concurrently, then record overlapping versions in
    different orders: every version once, each completed with its commit."""
    logs = [PostgresReleaseLog(state_url) for _ in range(4)]
    await asyncio.gather(*(log.open() for log in logs))
    versions = range(1, 61)
    rng = random.Random(14)

    async def writer(log: PostgresReleaseLog, index: int) -> None:
        order = list(versions)
        rng.shuffle(order)
        for v in order:
            if (v + index) % 2:
                event = ReleaseEvent(APP, v, float(v))
            else:
                event = ReleaseEvent(APP, v, float(v), "deploy", f"{v:08x}", f"Deploy {v:08x}")
            await log.record(event)

    await asyncio.gather(*(writer(log, i) for i, log in enumerate(logs)))
    stored = rows(state_url)
    assert [r[1] for r in stored] == list(versions)
    assert all(r[2:4] == ("deploy", f"{r[1]:08x}") for r in stored)
    newest = await logs[0].recent(APP, limit=5)
    assert [e.version for e in newest] == [60, 59, 58, 57, 56]
    await asyncio.gather(*(log.close() for log in logs))


async def test_lost_connection_is_an_error_then_reconnects(state_url: str, pg_bed: TestBed) -> None:
    log = PostgresReleaseLog(state_url)
    await log.open()
    await log.record(ReleaseEvent(APP, 1, 1.0))
    TestBed.run_sql(
        pg_bed.primary,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'app-monitor-releases'",
    )
    try:
        await log.record(ReleaseEvent(APP, 2, 2.0))
    except ReleaseLogError:
        await log.record(ReleaseEvent(APP, 2, 2.0))  # the component's writer retries
    assert [e.version for e in await log.recent(APP)] == [2, 1]
    await log.close()


async def test_errors_do_not_show_the_password(pg_bed: TestBed) -> None:
    secret = "not-the-Password-42"
    log = PostgresReleaseLog(pg_bed.primary.dsn("postgres", "nobody", secret))
    with pytest.raises(ReleaseLogError) as caught:
        await log.open()
    assert secret not in str(caught.value)
    assert "nobody" not in str(caught.value)

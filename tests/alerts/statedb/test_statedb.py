"""State databases (SQLite file, real PostgreSQL) and their leader locks."""

from __future__ import annotations

import pytest

from alerts.instance import AlertInstance, Clock, State
from alerts.labels import freeze
from alerts.statedb import StateDb, StateDbError, open_state_db
from alerts.statedb.records import (
    Changes,
    HistoryRow,
    Notification,
    OutboxRow,
    ReceiverStatus,
    StoredInstance,
)
from alerts.statedb.sqlite import sqlite_path
from monitor.app.config import StateConfig
from monitor.app.demo.testbed import TestBed


def test_sqlite_urls() -> None:
    assert sqlite_path("sqlite:///monitor-state.db") == "monitor-state.db"
    assert sqlite_path("sqlite:////var/lib/monitor/state.db") == "/var/lib/monitor/state.db"
    assert sqlite_path("sqlite:///:memory:") == ":memory:"


def sample_changes(clock: Clock) -> Changes:
    instance = AlertInstance(
        key="PgDown{target='primary'}",
        rule="PgDown",
        labels=freeze({"target": "primary"}),
        state=State.FIRING,
        severity="critical",
        value=0.0,
        threshold=0.0,
        active_since=clock.monotonic - 120,
        active_at=clock.wall - 120,
        last_true=clock.monotonic - 5,
        fired_at=clock.wall - 60,
        job=("postgres", "primary"),
    )
    return Changes(
        instances=[StoredInstance.of(instance, clock)],
        notifications=[
            Notification(
                instance.key,
                "oncall",
                "app-monitor/PgDown/target=primary",
                "K" * 32,
                "sent",
                clock.wall - 59,
                clock.wall - 59,
            )
        ],
        outbox=[
            OutboxRow(
                7,
                "oncall",
                instance.key,
                "resolve",
                "",
                "idem",
                '{"x":1}',
                "sending",
                1,
                clock.wall + 10,
                clock.wall,
                "HTTP 503",
            )
        ],
        receivers=[ReceiverStatus("team", "abc", "HTTP 410 channel_is_archived", clock.wall)],
        history=[HistoryRow("PgQueryRegression", "[]", clock.wall, 10.0, 0.5)],
    )


async def test_round_trip(store_url: str) -> None:
    clock = Clock(5000.0, 1_800_000_000.0)
    store = open_state_db(StateConfig(url=store_url))
    await store.open()
    await store.open()  # idempotent
    await store.apply(sample_changes(clock))
    data = await store.load()
    (stored,) = data.instances
    restored = stored.instance(Clock(10.0, clock.wall + 3600))  # a new process, an hour on
    assert restored.state is State.FIRING
    assert restored.labels == (("target", "primary"),)
    assert restored.active_at == clock.wall - 120
    assert restored.active_since == pytest.approx(10.0 - 3600 - 120)
    assert restored.job == ("postgres", "primary")
    assert data.notifications[0].routing_key == "K" * 32
    assert data.outbox[0].state == "sending"
    assert data.outbox[0].group == ""
    assert data.receivers[0].broken_reason == "HTTP 410 channel_is_archived"
    assert data.history[0].calls == 10.0
    # updates and deletes in one batch
    await store.apply(
        Changes(
            instances_deleted=[stored.key],
            notifications_deleted=[(stored.key, "oncall")],
            outbox_deleted=[7],
            history_before={"PgQueryRegression": clock.wall + 1},
        )
    )
    data = await store.load()
    assert (data.instances, data.notifications, data.outbox, data.history) == ([], [], [], [])
    await store.close()


async def test_a_failed_batch_changes_nothing(store_url: str) -> None:
    clock = Clock(5000.0, 1_800_000_000.0)
    store = open_state_db(StateConfig(url=store_url))
    await store.open()
    bad = sample_changes(clock)
    bad.outbox.append(bad.outbox[0].__class__(8, None, "", "", "", "", "", "pending"))  # type: ignore[arg-type]
    with pytest.raises(StateDbError):
        await store.apply(bad)
    assert (await store.load()).instances == []
    await store.close()


async def leadership_pair(url: str) -> tuple[StateDb, StateDb]:
    a, b = open_state_db(StateConfig(url=url)), open_state_db(StateConfig(url=url))
    await a.open()
    await b.open()
    return a, b


async def test_only_one_leader(store_url: str) -> None:
    a, b = await leadership_pair(store_url)
    lead_a, lead_b = a.leadership(), b.leadership()
    assert await lead_a.try_acquire() is True
    assert await lead_a.try_acquire() is True  # re-entrant for the holder
    assert await lead_b.try_acquire() is False
    assert await lead_a.still_held() is True
    await lead_a.release()
    assert await lead_b.try_acquire() is True
    assert await lead_a.try_acquire() is False
    await lead_b.release()
    await a.close()
    await b.close()


async def test_postgres_lock_dies_with_its_session(pg_state_url: str, pg_bed: TestBed) -> None:
    a, b = await leadership_pair(pg_state_url)
    lead_a, lead_b = a.leadership(), b.leadership()
    assert await lead_a.try_acquire()
    TestBed.run_sql(
        pg_bed.primary,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'app-monitor-alerting' AND pid IN "
        "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)",
    )
    with pytest.raises(StateDbError):
        await lead_a.still_held()
    assert await lead_b.try_acquire() is True
    await lead_b.release()
    await a.close()
    await b.close()


async def test_unreachable_postgres_is_a_clear_error() -> None:
    store = open_state_db(StateConfig(url="postgresql://u:s3cretpw@127.0.0.1:1/state"))
    with pytest.raises(StateDbError) as err:
        await store.open()
    assert "s3cretpw" not in str(err.value)
    assert "cannot connect to the state store" in str(err.value)
    assert "s3cretpw" not in store.description

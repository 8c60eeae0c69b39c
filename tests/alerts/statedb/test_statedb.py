"""State databases (SQLite file, real PostgreSQL) and their leader locks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from support import wait_for

from alerts.instance import AlertInstance, Clock, State
from alerts.labels import freeze
from alerts.statedb import StateDb, StateDbError, open_state_db
from alerts.statedb.lease import Fenced
from alerts.statedb.records import (
    Changes,
    HistoryRow,
    Notification,
    OutboxRow,
    ReceiverStatus,
    StoredInstance,
)
from alerts.statedb.sqlite import SqliteStateDb, sqlite_path
from monitor.app.config import StateConfig


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


async def test_a_lease_not_renewed_is_taken_over_and_the_old_token_is_fenced(
    store_url: str,
) -> None:
    """A leader that stops renewing (frozen, host gone) loses the lease when it expires;
    the new holder gets a higher token, and the old one can neither renew nor write."""
    config = StateConfig(url=store_url, lease="1s", lease_renew="500ms")
    a, b = open_state_db(config), open_state_db(config)
    await a.open()
    await b.open()
    lead_a, lead_b = a.leadership(), b.leadership()
    assert await lead_a.try_acquire() is True
    old = lead_a.token
    assert old is not None and lead_a.fresh()
    assert await lead_b.try_acquire() is False  # the lease runs for another second
    await wait_for(lead_b.try_acquire, timeout=10)  # a stops renewing: b takes over
    assert lead_b.token is not None and lead_b.token > old
    assert not lead_a.fresh()  # a's own clock says its lease ran out before b took it
    clock = Clock(5000.0, 1_800_000_000.0)
    with pytest.raises(Fenced):
        await a.apply(sample_changes(clock), old)
    assert (await b.load()).instances == []  # nothing of the stale write landed
    await b.apply(sample_changes(clock), lead_b.token)
    assert await lead_a.still_held() is False  # renewing with a stale token fails
    assert await lead_b.still_held() is True
    await lead_b.release()
    assert await lead_a.try_acquire() is True  # a released lease is free at once
    await lead_a.release()
    await a.close()
    await b.close()


async def test_a_failed_sqlite_commit_is_rolled_back(tmp_path: Path) -> None:
    """A COMMIT that fails (here: a deferred foreign key) must not leave the transaction
    open, or every later write fails until restart."""
    store = open_state_db(StateConfig(url=f"sqlite:///{tmp_path / 'state.db'}"))
    await store.open()
    assert isinstance(store, SqliteStateDb)
    conn = store._connection()
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )

    def orphan(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO child VALUES (42)")  # accepted now, refused at COMMIT

    with pytest.raises(sqlite3.IntegrityError):
        store._transaction(orphan)
    assert not conn.in_transaction
    clock = Clock(5000.0, 1_800_000_000.0)
    await store.apply(sample_changes(clock))
    assert len((await store.load()).instances) == 1
    await store.close()


async def test_unreachable_postgres_is_a_clear_error() -> None:
    store = open_state_db(StateConfig(url="postgresql://u:s3cretpw@127.0.0.1:1/state"))
    with pytest.raises(StateDbError) as err:
        await store.open()
    assert "s3cretpw" not in str(err.value)
    assert "cannot connect to the state store" in str(err.value)
    assert "s3cretpw" not in store.description


async def test_thinned_history_points_are_deleted_one_by_one(store_url: str) -> None:
    """A regression history thinned in memory is thinned in the state database: the
    named points go, the series' other points and other series stay."""
    clock = Clock(5000.0, 1_800_000_000.0)
    store = open_state_db(StateConfig(url=store_url))
    await store.open()
    rows = [
        HistoryRow("PgQueryRegression", series, clock.wall + i * 150.0, 10.0 * i, 0.1 * i)
        for series in ('[["queryid","1"]]', '[["queryid","2"]]')
        for i in range(4)
    ]
    await store.apply(Changes(history=rows))
    thinned = [(r.rule, r.series, r.at) for r in rows[1:3]]
    await store.apply(Changes(history_dropped=thinned))
    assert (await store.load()).history == [rows[0], rows[3], *rows[4:]]
    await store.close()

"""Persistence against a real SQLite state database: write-through, retry while the
database fails, takeover (adopt) and step-down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from alert_stages import Stages, clock, event

from alerts.evaluator import EvalState
from alerts.instance import AlertInstance, State
from alerts.labels import freeze
from alerts.notify.persistence import DB_RETRY, Persistence
from alerts.statedb import StateDb, StateDbError, open_state_db
from alerts.statedb.config import StateConfig
from alerts.statedb.records import (
    PENDING,
    QUEUED,
    Changes,
    Notification,
    StateData,
    StoredInstance,
)


class FlakyDb:
    """The real SQLite database, made to fail on demand."""

    def __init__(self, db: StateDb) -> None:
        self.db = db
        self.failing = False
        self.writes = 0

    async def apply(self, changes: Changes, token: int | None = None) -> None:
        if self.failing:
            raise StateDbError("disk on fire")
        self.writes += 1
        await self.db.apply(changes, token)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[StateDb]:
    db = open_state_db(StateConfig(url=f"sqlite:///{tmp_path / 'state.db'}"))
    await db.open()
    yield db
    await db.close()


def firing(key: str = "i") -> AlertInstance:
    return AlertInstance(
        key=key,
        rule="R",
        labels=freeze({"target": key}),
        state=State.FIRING,
        severity="warning",
        value=1.0,
        threshold=0.5,
        active_since=clock().monotonic,
        active_at=clock().wall,
        last_true=clock().monotonic,
        fired_at=clock().wall,
    )


def wired(db: StateDb | FlakyDb) -> tuple[Stages, Persistence]:
    s = Stages()
    return s, Persistence(db, s.journal, s.ledger, s.outbox, s.counters)  # type: ignore[arg-type]


async def test_flush_writes_the_journal_through(db: StateDb) -> None:
    s, p = wired(db)
    s.ledger.put(Notification("i", "r", "dk", "rk", QUEUED))
    s.outbox.enqueue("r", "i", event(), group="", suffix="1", delay=0.0, now=clock())
    s.journal.instances.add("i")
    assert await p.flush({"i": firing()}, clock()) is True
    assert s.journal.take() == type(s.journal)()  # nothing left to write
    data = await db.load()
    assert [n.status for n in data.notifications] == [QUEUED]
    assert [(r.receiver, r.instance_key) for r in data.outbox] == [("r", "i")]
    assert [i.key for i in data.instances] == ["i"]
    (row_id,) = s.outbox.rows
    s.outbox.delivered([row_id], clock(1))
    s.ledger.forget("i", "r")
    s.journal.instances.add("i")
    assert await p.flush({}, clock(1)) is True
    data = await db.load()
    assert (data.outbox, data.notifications, data.instances) == ([], [], [])


async def test_a_failed_write_is_kept_and_retried_later(db: StateDb) -> None:
    flaky = FlakyDb(db)
    s, p = wired(flaky)
    s.outbox.enqueue("r", "i", event(), group="", suffix="1", delay=0.0, now=clock())
    flaky.failing = True
    assert await p.flush({}, clock()) is False
    assert s.counters.statedb_errors == 1
    flaky.failing = False
    assert await p.flush({}, clock(DB_RETRY / 2)) is False  # spaced out: not tried yet
    assert flaky.writes == 0
    s.outbox.enqueue("r", "j", event(), group="", suffix="2", delay=0.0, now=clock(3))
    assert await p.flush({}, clock(DB_RETRY)) is True
    assert sorted(r.instance_key for r in (await db.load()).outbox) == ["i", "j"]


async def test_adopt_takes_over_what_the_previous_leader_stored(db: StateDb) -> None:
    previous, p0 = wired(db)
    previous.ledger.put(Notification("stored", "r", "dk", "rk", QUEUED))
    previous.outbox.enqueue("r", "stored", event(), group="", suffix="1", delay=0.0, now=clock())
    (row_id,) = previous.outbox.rows
    previous.outbox.sending([row_id])  # crashed mid-request
    previous.journal.instances.add("stored")
    await p0.flush({"stored": firing("stored")}, clock())

    s, p = wired(db)
    mine = EvalState({"mine": firing("mine")})
    state = p.adopt(await db.load(), mine, clock(10), keep_memory=False)
    assert set(state.instances) == {"stored", "mine"}
    assert s.outbox.rows[row_id].state == PENDING  # sent again
    assert s.ledger.get("stored", "r") is not None
    assert "mine" in s.journal.instances  # only this process knew it: written out
    assert "stored" not in s.journal.instances
    assert await p.flush(state.instances, clock(10))
    assert {i.key for i in (await db.load()).instances} == {"stored", "mine"}


async def test_adopt_after_degraded_lets_memory_win(db: StateDb) -> None:
    s, p = wired(db)
    stored = replace(firing(), value=5.0)
    mine = EvalState({"i": firing()})
    data = StateData(instances=[StoredInstance.of(stored, clock())])
    s.outbox.enqueue("r", "i", event(), group="", suffix="1", delay=0.0, now=clock())
    state = p.adopt(data, mine, clock(), keep_memory=True)
    assert state.instances["i"].value == 1.0  # this process's own, not the stored 5.0
    assert len(s.outbox) == 1 and "i" in s.journal.instances
    plain = p.adopt(data, mine, clock(), keep_memory=False)
    assert plain.instances["i"].value == 5.0


async def test_step_down_forgets_delivery_state_and_the_journal(db: StateDb) -> None:
    s, p = wired(db)
    s.ledger.put(Notification("i", "r", "dk", "rk", QUEUED))
    s.outbox.enqueue("r", "i", event(), group="", suffix="1", delay=0.0, now=clock())
    p.step_down()
    assert len(s.outbox) == 0 and s.ledger.notifications == {}
    assert s.journal.take() == type(s.journal)()

"""The outbox: queueing (idempotent), due rows in order, and each delivery outcome."""

from __future__ import annotations

from dataclasses import replace

from alert_stages import Stages, clock, event

from alerts.notify.outbox import BACKOFF_CAP, backoff
from alerts.receivers.base import Outcome, Result
from alerts.statedb.records import FAILED, PENDING, QUEUED, SENDING, SENT, SILENCED, Notification


def queue(s: Stages, instance: str = "i", action: str = "trigger", delay: float = 0.0,
          suffix: str = "1", receiver: str = "r", t: float = 0.0) -> bool:  # fmt: skip
    return s.outbox.enqueue(
        receiver, instance, event(action), group="", suffix=suffix, delay=delay, now=clock(t)
    )


def told(s: Stages, instance: str = "i", receiver: str = "r") -> None:
    s.ledger.put(Notification(instance, receiver, "dk", None, QUEUED))


def test_the_same_decision_is_queued_once() -> None:
    s = Stages()
    assert queue(s) is True
    assert queue(s) is False
    assert queue(s, suffix="2") is True
    assert len(s.outbox) == 2
    assert s.woken == ["r", "r"]
    assert s.journal.outbox == set(s.outbox.rows)


def test_a_delivered_decision_can_be_queued_again() -> None:
    s = Stages()
    queue(s)
    (row,) = s.outbox.due_rows("r", clock())
    s.outbox.delivered([row.id], clock())
    assert len(s.outbox) == 0
    assert queue(s) is True


def test_row_ids_grow_with_time_and_never_repeat() -> None:
    s = Stages()
    queue(s, suffix="a", t=0)
    queue(s, suffix="b", t=0)
    queue(s, suffix="c", t=5)
    ids = sorted(s.outbox.rows)
    assert len(set(ids)) == 3
    assert ids[2] >= int(clock(5).wall * 1000) * 1000


def test_due_rows_oldest_first_and_a_resolve_never_overtakes_its_trigger() -> None:
    s = Stages()
    queue(s, "a", delay=30.0)  # trigger in its group_wait
    queue(s, "a", "resolve")
    queue(s, "b", suffix="x")
    queue(s, "c", suffix="y", receiver="r")
    due = s.outbox.due_rows("r", clock(1))
    assert [(r.instance_key, r.action) for r in due] == [("b", "trigger"), ("c", "trigger")]
    assert s.outbox.next_due("r", clock(1)) == 0.0
    later = s.outbox.due_rows("r", clock(31))
    assert [(r.instance_key, r.action) for r in later][:2] == [("a", "trigger"), ("a", "resolve")]


def test_next_due_counts_only_pending_rows() -> None:
    s = Stages()
    assert s.outbox.next_due("r", clock()) is None
    queue(s, delay=10.0)
    assert s.outbox.next_due("r", clock(4)) == 6.0
    (row_id,) = s.outbox.rows
    s.outbox.sending([row_id])
    assert s.outbox.next_due("r", clock(4)) is None
    assert s.outbox.due_rows("r", clock(20)) == []  # sending: not due again


def test_rows_are_per_receiver() -> None:
    s = Stages("a", "b")
    queue(s, receiver="a")
    queue(s, receiver="b")
    assert [r.receiver for r in s.outbox.due_rows("a", clock())] == ["a"]
    assert s.outbox.receivers_waiting() == {"a", "b"}


def test_delivered_trigger_is_recorded_sent_and_heals_the_receiver() -> None:
    s = Stages()
    told(s)
    s.ledger.receiver_broken("r", "410 Gone", clock())
    queue(s)
    (row_id,) = s.outbox.rows
    s.outbox.sending([row_id])
    assert s.outbox.rows[row_id].state == SENDING and s.outbox.rows[row_id].attempts == 1
    s.outbox.delivered([row_id], clock(2))
    record = s.ledger.get("i", "r")
    assert record is not None and record.status == SENT
    assert record.first_sent_at == record.last_sent_at == clock(2).wall
    assert s.ledger.receivers_up() == {"r": True}
    assert s.counters.notifications == {("r", "success"): 1}
    assert s.counters.latencies == [("r", 2.0)]


def test_retry_backs_off_at_least_retry_after() -> None:
    s = Stages()
    queue(s)
    (row_id,) = s.outbox.rows
    s.outbox.sending([row_id])
    delay = s.outbox.retry([row_id], Result(Outcome.RETRY, "503", retry_after=42.0), clock())
    assert delay == 42.0
    row = s.outbox.rows[row_id]
    assert (row.state, row.last_error) == (PENDING, "503")
    assert s.outbox.due_rows("r", clock(41)) == []
    assert [r.id for r in s.outbox.due_rows("r", clock(42))] == [row_id]
    assert s.counters.notifications == {("r", "retry"): 1}


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    for attempts, ceiling in ((1, 1.0), (2, 2.0), (4, 8.0), (30, BACKOFF_CAP)):
        for _ in range(20):
            assert ceiling / 2 <= backoff(attempts) <= ceiling


def test_failed_trigger_is_recorded_failed_and_breaks_the_receiver() -> None:
    s = Stages()
    told(s)
    queue(s)
    (row_id,) = s.outbox.rows
    s.outbox.failed([row_id], Result(Outcome.PERMANENT, "invalid routing key"), clock())
    assert len(s.outbox) == 0
    record = s.ledger.get("i", "r")
    assert record is not None and record.status == FAILED
    assert s.ledger.receivers_up() == {"r": False}
    assert s.ledger.receiver_status["r"].broken_reason == "invalid routing key"
    assert s.health_changes == 1


def test_silenced_trigger_is_remembered_as_silenced_unless_sent_before() -> None:
    s = Stages()
    told(s, "new")
    s.ledger.put(Notification("old", "r", "dk", None, QUEUED, 5.0, 5.0))
    queue(s, "new")
    queue(s, "old")
    for row in s.outbox.due_rows("r", clock()):
        s.outbox.silenced(row)
    assert [s.ledger.get(i, "r").status for i in ("new", "old")] == [SILENCED, SENT]  # type: ignore[union-attr]
    assert s.counters.notifications == {("r", "silenced"): 2}


def test_cancel_drops_only_an_unattempted_trigger() -> None:
    s = Stages()
    queue(s, delay=30.0)
    assert s.outbox.cancel_unsent_trigger("r", "other") is False
    assert s.outbox.cancel_unsent_trigger("r", "i") is True
    assert len(s.outbox) == 0
    queue(s, suffix="2")
    (row_id,) = s.outbox.rows
    s.outbox.sending([row_id])
    assert s.outbox.cancel_unsent_trigger("r", "i") is False


def test_adopt_sends_interrupted_rows_again_and_keeps_memory_on_request() -> None:
    s = Stages()
    queue(s, "mine")
    mine = next(iter(s.outbox.rows.values()))
    other = Stages()
    queue(other, "stored", t=10)
    stored = replace(next(iter(other.outbox.rows.values())), state=SENDING, attempts=1)
    s.journal.clear()
    s.outbox.adopt([stored], clock(10), keep_memory=False)
    assert list(s.outbox.rows) == [stored.id]
    assert s.outbox.rows[stored.id].state == PENDING
    assert s.journal.outbox == {stored.id}  # the reset is written back
    s.outbox.adopt([stored], clock(10), keep_memory=True)
    assert mine.id not in s.outbox.rows  # memory was already dropped by the first adopt
    s.outbox.clear()
    s.journal.clear()
    queue(s, "mine", suffix="again", t=20)
    (again,) = s.outbox.rows
    s.outbox.adopt([stored], clock(20), keep_memory=True)
    assert set(s.outbox.rows) == {stored.id, again}
    assert queue(s, "mine", suffix="again", t=20) is False  # the index survived the adopt
    # a row delivered from memory while the store was down is not brought back by it
    s.outbox.delivered([stored.id], clock(21))
    s.outbox.adopt([stored], clock(22), keep_memory=True)
    assert set(s.outbox.rows) == {again}

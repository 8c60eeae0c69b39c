"""The ledger: records per (alert, receiver), receiver health, takeover."""

from __future__ import annotations

from alert_stages import Stages, clock

from alerts.statedb.records import QUEUED, SENT, SILENCED, Notification, ReceiverStatus


def record(instance: str, receiver: str = "r", status: str = SENT) -> Notification:
    return Notification(instance, receiver, f"dk-{instance}", "rk", status, 1.0, 1.0)


def test_records_by_alert_and_every_change_is_journalled() -> None:
    s = Stages("a", "b")
    s.ledger.put(record("i", "b"))
    s.ledger.put(record("i", "a"))
    s.ledger.put(record("j", "a"))
    assert [n.receiver for n in s.ledger.told_about("i")] == ["a", "b"]
    s.ledger.forget("i", "a")
    assert [n.receiver for n in s.ledger.told_about("i")] == ["b"]
    s.ledger.forget("i", "b")
    assert s.ledger.told_about("i") == []
    assert s.journal.notifications == {("i", "a"), ("i", "b"), ("j", "a")}


def test_trigger_done_only_moves_a_queued_record() -> None:
    s = Stages()
    s.ledger.put(Notification("i", "r", "dk", None, QUEUED, 5.0, 5.0))
    s.ledger.trigger_done("i", "r", SENT, clock(50))
    after = s.ledger.get("i", "r")
    assert after is not None and after.status == SENT
    assert (after.first_sent_at, after.last_sent_at) == (5.0, clock(50).wall)
    s.ledger.trigger_done("i", "r", SENT, clock(90))  # not queued any more: no change
    assert s.ledger.get("i", "r") == after
    s.ledger.trigger_done("missing", "r", SENT, clock())
    assert s.ledger.get("missing", "r") is None


def test_trigger_silenced() -> None:
    s = Stages()
    s.ledger.put(Notification("i", "r", "dk", None, QUEUED))
    s.ledger.trigger_silenced("i", "r")
    assert s.ledger.get("i", "r").status == SILENCED  # type: ignore[union-attr]


def test_broken_until_it_delivers_again() -> None:
    s = Stages()
    s.ledger.receiver_broken("r", "410", clock(1))
    s.ledger.receiver_broken("r", "again", clock(2))  # already broken: first reason stays
    assert s.ledger.receiver_status["r"].broken_reason == "410"
    assert s.ledger.receivers_up() == {"r": False}
    s.ledger.receiver_ok("r")
    s.ledger.receiver_ok("r")  # already healthy: nothing to do
    assert s.ledger.receivers_up() == {"r": True}
    assert s.health_changes == 2
    assert s.journal.receivers == {"r"}
    s.ledger.receiver_broken("unknown", "x", clock())
    assert "unknown" not in s.ledger.receiver_status


def test_adopt_keeps_a_broken_status_only_for_an_unchanged_receiver() -> None:
    s = Stages("same", "changed")
    same = ReceiverStatus("same", s.receivers["same"].fingerprint(), "410", 1.0)
    changed = ReceiverStatus("changed", "an old endpoint", "410", 1.0)
    gone = ReceiverStatus("gone", "x", "410", 1.0)
    s.ledger.adopt([record("i", "same")], [same, changed, gone], keep_memory=False)
    assert s.ledger.receivers_up() == {"same": False, "changed": True}
    assert s.ledger.told_about("i") == [record("i", "same")]
    assert s.journal.notifications == set()  # stored records are not written back


def test_adopt_with_memory_lets_this_process_win() -> None:
    s = Stages()
    s.ledger.put(record("i", status=SENT))
    s.journal.clear()
    s.ledger.adopt([record("i", status=QUEUED), record("j")], [], keep_memory=True)
    assert s.ledger.get("i", "r").status == SENT  # type: ignore[union-attr]
    assert s.ledger.get("j", "r") is not None
    assert s.journal.notifications == {("i", "r")}


def test_clear_forgets_records_but_not_health() -> None:
    s = Stages()
    s.ledger.put(record("i"))
    s.ledger.receiver_broken("r", "410", clock())
    s.ledger.clear()
    assert s.ledger.told_about("i") == [] and s.ledger.notifications == {}
    assert s.ledger.receivers_up() == {"r": False}

"""The pure dispatch decision: every reason, from the ledger record and the alert now."""

from __future__ import annotations

import pytest

from alerts.notify.decision import Reason, decide_firing, decide_resolved
from alerts.statedb.records import FAILED, QUEUED, SENT, SILENCED, Notification

NOW = 10_000.0
HOUR = 3600.0


def told(status: str, *, first: float | None = None, last: float | None = None) -> Notification:
    return Notification("i", "r", "dedup", "rk", status, first, last)


@pytest.mark.parametrize(
    ("record", "silenced", "repeat", "reason"),
    [
        (None, False, HOUR, Reason.NEW),
        (None, True, HOUR, Reason.SILENCED),
        (told(QUEUED), False, HOUR, Reason.QUEUED),
        (told(QUEUED), True, HOUR, Reason.QUEUED),
        (told(SENT, first=NOW - 60, last=NOW - 60), False, HOUR, Reason.ALREADY_NOTIFIED),
        (told(SENT, first=NOW - 60, last=NOW - 60), False, None, Reason.ALREADY_NOTIFIED),
        (told(SENT, first=NOW - 2 * HOUR, last=NOW - HOUR), False, HOUR, Reason.REPEAT_DUE),
        (told(SENT, first=NOW - 2 * HOUR, last=NOW - HOUR), True, HOUR, Reason.STILL_SILENCED),
        (told(FAILED, first=NOW - HOUR, last=NOW - HOUR), False, HOUR, Reason.REPEAT_DUE),
        (told(FAILED, first=NOW - 60, last=NOW - 60), False, HOUR, Reason.ALREADY_NOTIFIED),
        (told(SILENCED), False, HOUR, Reason.SILENCE_ENDED),
        (told(SILENCED), True, HOUR, Reason.STILL_SILENCED),
    ],
)
def test_firing(
    record: Notification | None, silenced: bool, repeat: float | None, reason: Reason
) -> None:
    assert decide_firing(record, silenced=silenced, repeat_interval=repeat, now=NOW) is reason


def test_only_new_silence_ended_and_repeat_queue_a_trigger() -> None:
    queued = {r for r in Reason if r.notifies}
    assert queued == {Reason.NEW, Reason.SILENCE_ENDED, Reason.REPEAT_DUE, Reason.RESOLVED}
    assert [r for r in Reason if r.repeat] == [Reason.REPEAT_DUE]


def test_a_never_sent_record_repeats_from_the_epoch() -> None:
    """A sent record without ``last_sent_at`` counts as sent long ago: the repeat is due."""
    record = told(SENT)
    assert decide_firing(record, silenced=False, repeat_interval=HOUR, now=NOW) is Reason.REPEAT_DUE


@pytest.mark.parametrize(
    ("record", "cancelled", "known", "send_resolved", "reason"),
    [
        (told(SENT, first=1.0, last=1.0), False, True, True, Reason.RESOLVED),
        (told(SILENCED), False, True, True, Reason.NEVER_SENT),
        (told(FAILED, last=1.0), False, True, True, Reason.GAVE_UP),
        # a refused repeat: the first trigger opened an incident, it gets its resolve
        (told(FAILED, first=1.0, last=2.0), False, True, True, Reason.RESOLVED),
        (told(QUEUED), True, True, True, Reason.NEVER_SENT),  # blip in its group_wait
        (told(QUEUED, first=1.0, last=1.0), True, True, True, Reason.RESOLVED),  # repeat cancelled
        (told(QUEUED), False, True, True, Reason.RESOLVED),  # attempt under way: resolve too
        (told(SENT, first=1.0, last=1.0), False, False, False, Reason.RECEIVER_GONE),
        (told(SENT, first=1.0, last=1.0), False, True, False, Reason.RESOLVE_NOT_WANTED),
    ],
)
def test_resolved(
    record: Notification, cancelled: bool, known: bool, send_resolved: bool, reason: Reason
) -> None:
    got = decide_resolved(
        record, trigger_cancelled=cancelled, receiver_known=known, send_resolved=send_resolved
    )
    assert got is reason

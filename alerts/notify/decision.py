"""Whether to notify one receiver about one alert, and why: pure functions, no state.

The ledger records what each receiver was told (a :class:`Notification`); these
functions compare that with the alert as it is now and name the outcome:

* a firing alert: :func:`decide_firing` -> ``NEW``, ``SILENCE_ENDED`` or ``REPEAT_DUE``
  (queue a trigger), else why not (``QUEUED``, ``ALREADY_NOTIFIED``, ``SILENCED``,
  ``STILL_SILENCED``);
* a resolved alert: :func:`decide_resolved` -> ``RESOLVED`` (queue a resolve, with the
  trigger's receiver, dedup key and routing key whatever the routes say now), else why
  not (``NEVER_SENT``, ``GAVE_UP``, ``RECEIVER_GONE``, ``RESOLVE_NOT_WANTED``).

A trigger still waiting out its ``group_wait`` when the alert resolves is cancelled by
the caller (the outbox) before asking; such a blip is never sent, so nothing resolves.
"""

from __future__ import annotations

from enum import Enum

from alerts.statedb.records import FAILED, QUEUED, SENT, SILENCED, Notification


class Reason(Enum):
    # a trigger is queued
    NEW = "new"
    """Never told about this alert."""
    SILENCE_ENDED = "silence_ended"
    """Muted by a silence when it was due; the silence is over."""
    REPEAT_DUE = "repeat_due"
    """Told, still firing, and ``repeat_interval`` has elapsed."""
    # nothing is queued for a firing alert
    QUEUED = "queued"
    """A trigger is already waiting in the outbox."""
    ALREADY_NOTIFIED = "already_notified"
    """Told, and no repeat is due (or the route never repeats)."""
    SILENCED = "silenced"
    """Silenced and never told: remember it, to notify once the silence ends."""
    STILL_SILENCED = "still_silenced"
    """Silenced, and the ledger already says so (or a repeat is muted)."""
    # a resolve is queued
    RESOLVED = "resolved"
    # nothing is queued for a resolved alert
    NEVER_SENT = "never_sent"
    """The receiver was never told (silenced, or the trigger was cancelled unsent)."""
    GAVE_UP = "gave_up"
    """The first trigger failed permanently: there is nothing open to resolve. (A refused
    *repeat* does not count: the incident its first trigger opened gets its resolve.)"""
    RECEIVER_GONE = "receiver_gone"
    """The receiver is no longer configured: the resolve cannot be sent."""
    RESOLVE_NOT_WANTED = "resolve_not_wanted"
    """The receiver has ``send_resolved: false``."""

    @property
    def notifies(self) -> bool:
        """True when this decision puts a notification in the outbox."""
        return self in _NOTIFY

    @property
    def repeat(self) -> bool:
        return self is Reason.REPEAT_DUE


_NOTIFY = frozenset({Reason.NEW, Reason.SILENCE_ENDED, Reason.REPEAT_DUE, Reason.RESOLVED})


def decide_firing(
    told: Notification | None,
    *,
    silenced: bool,
    repeat_interval: float | None,
    now: float,
) -> Reason:
    """A firing alert routed to a receiver that was ``told`` this (None: nothing yet)."""
    repeat = False
    if told is not None:
        if told.status == QUEUED:
            return Reason.QUEUED
        if told.status in (SENT, FAILED):
            last = told.last_sent_at or 0.0
            if repeat_interval is None or now - last < repeat_interval:
                return Reason.ALREADY_NOTIFIED
            repeat = True
    if silenced:
        return Reason.SILENCED if told is None else Reason.STILL_SILENCED
    if repeat:
        return Reason.REPEAT_DUE
    return Reason.NEW if told is None else Reason.SILENCE_ENDED


def decide_resolved(
    told: Notification,
    *,
    trigger_cancelled: bool,
    receiver_known: bool,
    send_resolved: bool,
) -> Reason:
    """A resolved alert whose receiver was ``told`` this; ``trigger_cancelled`` when its
    queued trigger was dropped before any attempt."""
    if told.status == SILENCED:
        return Reason.NEVER_SENT
    if told.status == FAILED and told.first_sent_at is None:
        return Reason.GAVE_UP
    if trigger_cancelled and told.first_sent_at is None:
        return Reason.NEVER_SENT  # still in its group_wait: nothing to resolve
    if not receiver_known:
        return Reason.RECEIVER_GONE
    if not send_resolved:
        return Reason.RESOLVE_NOT_WANTED
    return Reason.RESOLVED

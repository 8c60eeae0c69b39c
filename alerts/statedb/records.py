"""Rows of the state database: alert instances, what was sent to whom, the outbox.

The daemon keeps all of this in memory and writes changes through to the store
(:class:`Changes`), so an unreachable store delays persistence without stopping alerts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from alerts.instance import AlertInstance, Clock, State
from alerts.labels import Labels

NotificationStatus = str
QUEUED = "queued"
"""A trigger is in the outbox."""
SENT = "sent"
SILENCED = "silenced"
"""Muted when it was due: notified once the silence ends, if still firing."""
FAILED = "failed"
"""The receiver refused it permanently."""


@dataclass(frozen=True, slots=True)
class Notification:
    """What one receiver was told about one alert instance."""

    instance_key: str
    receiver: str
    dedup_key: str
    routing_key: str | None = field(repr=False)
    status: NotificationStatus
    first_sent_at: float | None = None
    last_sent_at: float | None = None


PENDING = "pending"
SENDING = "sending"
"""Written before the request: found at start-up, it means "maybe delivered"."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    receiver: str
    instance_key: str
    action: str
    group: str
    idem_key: str
    """Unique per delivery decision: enqueueing the same decision twice is a no-op."""
    payload: str = field(repr=False)
    """The :class:`~alerts.notify.events.Event` as JSON."""
    state: str = PENDING
    attempts: int = 0
    next_attempt_at: float = 0.0
    created_at: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiverStatus:
    name: str
    fingerprint: str
    """Hash of the receiver's endpoint: a changed configuration clears "broken"."""
    broken_reason: str | None = None
    broken_since: float | None = None


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """An :class:`AlertInstance` with wall-clock times only (monotonic ones don't persist)."""

    key: str
    rule: str
    labels: str
    state: str
    severity: str
    value: float | None
    threshold: float | None
    active_at: float
    fired_at: float | None
    last_true_at: float
    job_collector: str | None
    job_target: str | None

    @classmethod
    def of(cls, instance: AlertInstance, now: Clock) -> StoredInstance:
        return cls(
            key=instance.key,
            rule=instance.rule,
            labels=json.dumps(instance.labels),
            state=instance.state.value,
            severity=instance.severity,
            value=instance.value,
            threshold=instance.threshold,
            active_at=instance.active_at,
            fired_at=instance.fired_at,
            last_true_at=now.wall - (now.monotonic - instance.last_true),
            job_collector=instance.job[0] if instance.job else None,
            job_target=instance.job[1] if instance.job else None,
        )

    def instance(self, now: Clock) -> AlertInstance:
        labels: Labels = tuple((str(k), str(v)) for k, v in json.loads(self.labels))
        job = (
            (self.job_collector, self.job_target)
            if self.job_collector is not None and self.job_target is not None
            else None
        )
        return AlertInstance(
            key=self.key,
            rule=self.rule,
            labels=labels,
            state=State(self.state),
            severity=self.severity,
            value=self.value,
            threshold=self.threshold,
            active_since=now.monotonic_of(self.active_at),
            active_at=self.active_at,
            last_true=now.monotonic_of(self.last_true_at),
            fired_at=self.fired_at,
            job=job,
        )


@dataclass(frozen=True, slots=True)
class HistoryRow:
    rule: str
    series: str
    """The query's labels as JSON."""
    at: float
    calls: float
    seconds: float


@dataclass(frozen=True, slots=True)
class SilenceRow:
    """A silence added at run time (``POST /silences``, ``monitor silence add``)."""

    id: str
    matchers: str
    """Exact label matchers as a JSON object."""
    matchers_re: str
    """Regular-expression matchers as a JSON object."""
    starts_at: float
    ends_at: float
    """Wall time; expiring a silence moves it to the moment it was expired."""
    comment: str
    created_by: str
    created_at: float
    expired_at: float | None = None


@dataclass(slots=True)
class StateData:
    instances: list[StoredInstance] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    receivers: list[ReceiverStatus] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)


@dataclass(slots=True)
class Changes:
    """One atomic batch of writes."""

    instances: list[StoredInstance] = field(default_factory=list)
    instances_deleted: list[str] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    notifications_deleted: list[tuple[str, str]] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    outbox_deleted: list[int] = field(default_factory=list)
    receivers: list[ReceiverStatus] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    history_reset: list[tuple[str, str]] = field(default_factory=list)
    history_dropped: list[tuple[str, str, float]] = field(default_factory=list)
    """(rule, series, at) of points a regression history dropped (thinned or pruned)."""
    history_before: dict[str, float] = field(default_factory=dict)
    """Per rule: delete history points older than this wall time."""

    def __bool__(self) -> bool:
        return any(
            (
                self.instances,
                self.instances_deleted,
                self.notifications,
                self.notifications_deleted,
                self.outbox,
                self.outbox_deleted,
                self.receivers,
                self.history,
                self.history_reset,
                self.history_dropped,
                self.history_before,
            )
        )

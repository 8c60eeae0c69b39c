"""Alert instances and their transitions: the evaluator's input and output values."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from alerts.labels import Labels

JobKey = tuple[str, str]
"""(collector, target) of the job whose samples an instance watches."""


@dataclass(frozen=True, slots=True)
class Clock:
    """One instant read from both clocks: monotonic for durations, wall for timestamps."""

    monotonic: float
    wall: float

    def monotonic_of(self, wall: float) -> float:
        """The monotonic reading that corresponds to an earlier wall-clock time."""
        return self.monotonic - max(0.0, self.wall - wall)


class State(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertInstance:
    """One rule applied to one label set, while it is pending or firing."""

    key: str
    rule: str
    labels: Labels
    """The series' labels (``target`` first among them): the instance's identity."""
    state: State
    severity: str
    value: float | None
    threshold: float | None
    """The threshold the value was compared with (per instance for regression rules)."""
    active_since: float
    """Monotonic time the condition was first seen true (start of pending)."""
    active_at: float
    """Wall-clock time of the same instant: the detection time shown in notifications."""
    last_true: float
    """Monotonic time the condition (with hysteresis) was last seen true."""
    fired_at: float | None = None
    """Wall-clock time the instance started firing."""
    resolved_at: float | None = None
    job: JobKey | None = None
    """The collector job whose samples this instance watches (None: always evaluable)."""

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state: ``old``/``new`` None mean inactive (never notified)."""

    instance: AlertInstance
    old: State | None
    new: State | None

    @property
    def fired(self) -> bool:
        return self.new is State.FIRING and self.old is not State.FIRING

    @property
    def resolved(self) -> bool:
        return self.new is State.RESOLVED

"""What a receiver is asked to deliver: one alert's trigger or resolve, fully rendered.

An event is built when it is queued (templates rendered, detection time fixed) and
stored in the outbox as JSON, so a restart delivers exactly what was decided, with the
``dedup_key`` and routing key the alert was first sent with.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

Action = Literal["trigger", "resolve"]


@dataclass(frozen=True, slots=True)
class Event:
    action: Action
    rule: str
    severity: str
    labels: dict[str, str]
    """Alert labels: the series' labels plus the rule's static labels and ``alertname``."""
    summary: str
    description: str
    value: float | None
    threshold: float | None
    active_at: float
    """Detection time (wall clock): when the condition was first seen."""
    fired_at: float | None
    resolved_at: float | None
    dedup_key: str
    runbook_url: str | None = None
    dashboard_url: str | None = None
    component: str | None = None
    """The collector that produced the metric (PagerDuty ``component``)."""
    repeat: bool = False
    test: bool = False
    routing_key: str | None = field(default=None, repr=False)
    """PagerDuty routing key the trigger went out with (the resolve must reuse it)."""

    @property
    def firing(self) -> bool:
        return self.action == "trigger"

    @property
    def timestamp(self) -> float:
        """The time to show: detection for a trigger, clearing for a resolve."""
        if self.action == "resolve" and self.resolved_at is not None:
            return self.resolved_at
        return self.active_at

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: asdict copies
        return json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> Event:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    return value if value is not None and math.isfinite(value) else None


def iso(timestamp: float | None) -> str | None:
    """RFC 3339 with milliseconds, UTC (``2026-01-01T12:00:00.000Z``)."""
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )

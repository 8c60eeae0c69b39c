"""What the alerting self-metrics count (read by :mod:`alerts.service.metrics`)."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_LATENCIES = 10_000
"""Latencies kept between two scrapes; more are not recorded."""


@dataclass(slots=True)
class Counters:
    notifications: dict[tuple[str, str], int] = field(default_factory=dict)
    """(receiver, status) -> count; status is success, retry, permanent_error, silenced
    or dropped."""
    latencies: list[tuple[str, float]] = field(default_factory=list)
    """(receiver, seconds from queueing to delivery), drained by the metrics collector."""
    last_eval_seconds: float = 0.0
    evaluations: int = 0
    statedb_errors: int = 0
    """Failed writes to the state database."""

    def count(self, receiver: str, status: str, n: int = 1) -> None:
        key = (receiver, status)
        self.notifications[key] = self.notifications.get(key, 0) + n

    def latency(self, receiver: str, seconds: float) -> None:
        if len(self.latencies) < MAX_LATENCIES:
            self.latencies.append((receiver, max(0.0, seconds)))

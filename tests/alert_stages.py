"""Small builders shared by the notify stage tests."""

from __future__ import annotations

from alerts.instance import Clock
from alerts.notify.counters import Counters
from alerts.notify.events import Event
from alerts.notify.journal import Journal
from alerts.notify.ledger import Ledger
from alerts.notify.outbox import Outbox
from alerts.receivers.base import Receiver
from alerts.receivers.log import LogReceiver


def event(action: str = "trigger", key: str = "dk") -> Event:
    return Event(
        action="trigger" if action == "trigger" else "resolve",
        rule="R",
        severity="warning",
        labels={"alertname": "R", "severity": "warning"},
        summary="s",
        description="",
        value=1.0,
        threshold=0.5,
        active_at=1.0,
        fired_at=1.0,
        resolved_at=None if action == "trigger" else 2.0,
        dedup_key=key,
    )


def clock(t: float = 0.0) -> Clock:
    return Clock(1000.0 + t, 1_800_000_000.0 + t)


class Stages:
    """A ledger and an outbox sharing one journal, as the coordinator wires them."""

    def __init__(self, *names: str) -> None:
        self.receivers: dict[str, Receiver] = {n: LogReceiver(n) for n in names or ("r",)}
        self.journal = Journal()
        self.counters = Counters()
        self.woken: list[str] = []
        self.health_changes = 0
        self.ledger = Ledger(self.receivers, self.journal, on_receivers_change=self._health)
        self.outbox = Outbox(self.ledger, self.journal, self.counters, on_enqueue=self.woken.append)

    def _health(self) -> None:
        self.health_changes += 1

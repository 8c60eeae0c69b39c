"""The log receiver: alerts as structured log lines (the default with no receivers)::

{"event": "alert firing", "rule": "PgDown", "severity": "critical",
 "labels": {"target": "primary", ...}, "summary": "...", "detected_at": "..."}
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from alerts.notify.events import Event, iso
from alerts.receivers.base import Outcome, Receiver, Result
from monitor.kernel.source import CheckResult

log = structlog.get_logger("alerts")


class LogReceiver(Receiver):
    kind = "log"
    coalesce = True

    def __init__(self, name: str, send_resolved: bool = True) -> None:
        self.name = name
        self.send_resolved = send_resolved

    async def send(self, events: Sequence[Event]) -> Result:
        for event in events:
            fields = {
                "receiver": self.name,
                "rule": event.rule,
                "severity": event.severity,
                "labels": event.labels,
                "summary": event.summary,
                "value": event.value,
                "detected_at": iso(event.active_at),
                "dedup_key": event.dedup_key,
            }
            if event.test:
                fields["test"] = True
            if event.firing:
                log.warning("alert firing" + (" (repeat)" if event.repeat else ""), **fields)
            else:
                log.info("alert resolved", resolved_at=iso(event.resolved_at), **fields)
        return Result(Outcome.DELIVERED, f"logged {len(events)}")

    async def probe(self) -> CheckResult:
        return CheckResult(f"receiver/{self.name}", True, "log receiver (writes to the log)")

"""Generic JSON webhook: the alerts due together in one POST.

::

    {"version": "1", "receiver": "audit", "status": "firing",
     "alerts": [{"status": "firing", "rule": "PgDown", "severity": "critical",
                 "labels": {"alertname": "PgDown", "target": "primary", ...},
                 "summary": "...", "description": "...", "value": 0.0, "threshold": 0.0,
                 "starts_at": "2026-01-01T12:00:00.000Z", "ends_at": null,
                 "dedup_key": "app-monitor/PgDown/target=primary", "runbook_url": null,
                 "dashboard_url": null, "repeat": false, "test": false}],
     "truncated_alerts": 0}

With ``format: alertmanager`` the body is Alertmanager's webhook v4 instead (see
:mod:`alerts.receivers.alertmanager_format`). 2xx is success; 408, 429 and 5xx are
retried; other 4xx are permanent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from alerts.notify.events import Event, finite, iso
from alerts.receivers.alertmanager_format import webhook_body
from alerts.receivers.base import (
    HttpReceiver,
    Result,
    body_reason,
    classify_status,
    fingerprint_of,
    post,
    probe_http,
)
from alerts.receivers.config import WebhookConfig as Config
from monitor.kernel.source import CheckResult


def alert_json(event: Event) -> dict[str, Any]:
    return {
        "status": "firing" if event.firing else "resolved",
        "rule": event.rule,
        "severity": event.severity,
        "labels": event.labels,
        "summary": event.summary,
        "description": event.description,
        "value": finite(event.value),
        "threshold": finite(event.threshold),
        "starts_at": iso(event.active_at),
        "ends_at": iso(event.resolved_at) if not event.firing else None,
        "dedup_key": event.dedup_key,
        "runbook_url": event.runbook_url,
        "dashboard_url": event.dashboard_url,
        "repeat": event.repeat,
        "test": event.test,
    }


def build_body(name: str, events: Sequence[Event], max_alerts: int) -> dict[str, Any]:
    alerts = [alert_json(e) for e in events[:max_alerts]]
    return {
        "version": "1",
        "receiver": name,
        "status": "firing" if any(e.firing for e in events) else "resolved",
        "alerts": alerts,
        "truncated_alerts": max(0, len(events) - max_alerts),
    }


class WebhookReceiver(HttpReceiver):
    kind = "webhook"
    coalesce = True

    def __init__(self, name: str, config: Config, client: httpx.AsyncClient) -> None:
        super().__init__(name, config, client, config.url.get_secret_value())
        self.config = config

    def fingerprint(self) -> str:
        return fingerprint_of(self.kind, self.config.url.get_secret_value())

    def _headers(self) -> dict[str, str]:
        if self.config.bearer_token is None:
            return {}
        return {"Authorization": f"Bearer {self.config.bearer_token.get_secret_value()}"}

    def payload(self, events: Sequence[Event]) -> dict[str, Any]:
        """The body in the configured ``format``."""
        if self.config.format == "alertmanager":
            return webhook_body(
                self.name,
                events,
                max_alerts=self.config.max_alerts,
                external_url=self.config.external_url or "",
            )
        return build_body(self.name, events, self.config.max_alerts)

    async def send(self, events: Sequence[Event]) -> Result:
        body = json.dumps(self.payload(events), ensure_ascii=False).encode()
        response = await post(
            self._client,
            self.config.url.get_secret_value(),
            body,
            self.config.timeout,
            self._headers(),
        )
        if isinstance(response, Result):
            return response
        return classify_status(response, body_reason(response, 60))

    async def probe(self) -> CheckResult:
        item = f"receiver/{self.name}"
        response = await probe_http(
            self._client,
            item,
            "HEAD",
            self.config.url.get_secret_value(),
            10.0,
            headers=self._headers(),
        )
        if isinstance(response, CheckResult):
            return response
        if response.status_code >= 500:
            return CheckResult(item, False, f"webhook answered HTTP {response.status_code}")
        return CheckResult(item, True, f"webhook reachable (HTTP {response.status_code})")

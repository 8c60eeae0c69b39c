"""PagerDuty Events API v2: one ``trigger``/``resolve`` per alert instance.

Trigger (``POST {url}``, answered ``202 {"status":"success","dedup_key":...}``)::

    {"routing_key": "<32 chars>", "event_action": "trigger",
     "dedup_key": "app-monitor/PgDown/target=primary",
     "payload": {"summary": "PostgreSQL primary is not answering", "source": "primary",
                 "severity": "critical", "timestamp": "2026-01-01T12:00:00.000Z",
                 "component": "postgres", "class": "PgDown",
                 "custom_details": {"rule": "PgDown", "value": 0.0, "threshold": 0.0,
                                    "labels": {...}, "description": "..."}},
     "links": [{"href": "https://...", "text": "Runbook"}],
     "client": "app-monitor"}

Resolve: ``{"routing_key": ..., "event_action": "resolve", "dedup_key": ...}``, always
with the routing key and dedup key the trigger went out with. 400 is permanent; 429 and
5xx are retried (429 without ``Retry-After`` waits 30 s, as PagerDuty suggests).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from alerts.notify.events import Event, finite, iso
from alerts.receivers.base import (
    HttpReceiver,
    Outcome,
    Result,
    body_reason,
    classify_status,
    fingerprint_of,
    post,
    probe_http,
)
from alerts.receivers.config import PagerDutyConfig as Config
from alerts.text import truncate
from monitor.kernel.source import CheckResult

SUMMARY_MAX = 1024
EVENT_MAX_BYTES = 512_000
RATE_LIMIT_WAIT = 30.0


def event_body(event: Event, routing_key: str, config: Config) -> dict[str, Any]:
    """The exact JSON PagerDuty receives for ``event``."""
    if event.action == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": event.dedup_key}
    summary = event.summary or f"{event.rule} {event.labels.get('target', '')}".strip()
    if event.test:
        summary = f"[TEST] {summary}"
    details: dict[str, Any] = {
        "rule": event.rule,
        "value": finite(event.value),
        "threshold": finite(event.threshold),
        "labels": event.labels,
    }
    if event.description:
        details["description"] = event.description
    if event.repeat:
        details["repeat"] = True
    payload: dict[str, Any] = {
        "summary": truncate(summary, SUMMARY_MAX),
        "source": event.labels.get("target") or "app-monitor",
        "severity": config.severity_map.get(event.severity, "error"),  # type: ignore[call-overload]
        "timestamp": iso(event.active_at),
        "class": event.rule,
        "custom_details": details,
    }
    if event.component:
        payload["component"] = event.component
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": event.dedup_key,
        "payload": payload,
    }
    links = [
        {"href": href, "text": text}
        for href, text in ((event.runbook_url, "Runbook"), (event.dashboard_url, "Dashboard"))
        if href
    ]
    if links:
        body["links"] = links
    body["client"] = config.client
    if config.client_url:
        body["client_url"] = config.client_url
    if len(encode(body)) > EVENT_MAX_BYTES:
        payload["custom_details"] = {"rule": event.rule, "note": "details too large to send"}
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, allow_nan=False).encode()


class PagerDutyReceiver(HttpReceiver):
    kind = "pagerduty"
    coalesce = False

    def __init__(self, name: str, config: Config, client: httpx.AsyncClient) -> None:
        super().__init__(name, config, client)
        self.config = config

    def routing_key(self) -> str:
        return self.config.routing_key.get_secret_value()

    def fingerprint(self) -> str:
        return fingerprint_of(self.kind, self.config.url, self.routing_key())

    async def send(self, events: Sequence[Event]) -> Result:
        (event,) = events
        body = event_body(event, event.routing_key or self.routing_key(), self.config)
        response = await post(self._client, self.config.url, encode(body), self.config.timeout)
        if isinstance(response, Result):
            return response
        result = classify_status(response, _reason(response))
        if result.status == 429 and result.retry_after is None:
            return Result(Outcome.RETRY, result.detail, 429, RATE_LIMIT_WAIT)
        return result

    async def probe(self) -> CheckResult:
        item = f"receiver/{self.name}"
        response = await probe_http(self._client, item, "GET", self.config.url, 10.0)
        if isinstance(response, CheckResult):
            return response
        if response.status_code >= 500:
            return CheckResult(item, False, f"PagerDuty answered HTTP {response.status_code}")
        return CheckResult(
            item, True, f"pagerduty endpoint reachable (HTTP {response.status_code})"
        )


def _reason(response: httpx.Response) -> str:
    if 200 <= response.status_code < 300:
        return ""
    try:
        data = response.json()
    except ValueError:
        return body_reason(response)
    if isinstance(data, dict):
        parts = [str(data.get("message") or data.get("status") or "")]
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            parts.append("; ".join(str(e) for e in errors[:3]))
        return body_reason(httpx.Response(200, text=": ".join(p for p in parts if p)))
    return body_reason(response)

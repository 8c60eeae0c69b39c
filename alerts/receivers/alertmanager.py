"""Alertmanager API v2: the due alerts in one ``POST {url}/api/v2/alerts`` per instance.

As Prometheus does, every instance of a cluster gets every alert (gossip shares
silences and the notification log, not alerts), a firing alert carries ``endsAt`` =
now + 4 x ``resend_interval`` and is re-sent every ``resend_interval`` (the coordinator
caps the route's ``repeat_interval`` with :attr:`Receiver.resend_interval`), and a
resolve carries the resolution time as ``endsAt``. Alertmanager then groups, inhibits,
silences and deduplicates across every daemon that sends to it. The daemon's own
routes and silences apply first: a silenced alert is not re-sent, so Alertmanager
resolves it when its ``endsAt`` passes.

Delivered when at least one instance accepts (200); an instance that was down catches
up at the next re-send. Retried when none accepted and one answered 5xx/429 or not at
all; permanent when every instance refused (400: the body is invalid).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx

from alerts.notify.events import Event
from alerts.receivers.alertmanager_format import postable_alert
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
from alerts.receivers.config import AlertmanagerConfig as Config
from monitor.kernel.source import CheckResult

VALIDITY_FACTOR = 4
"""A firing alert is valid for this many resend intervals (Prometheus uses 4)."""


class AlertmanagerReceiver(HttpReceiver):
    kind = "alertmanager"
    coalesce = True

    def __init__(self, name: str, config: Config, client: httpx.AsyncClient) -> None:
        super().__init__(name, config, client)
        self.config = config
        self.resend_interval = config.resend_interval
        self.endpoints = [f"{url.rstrip('/')}/api/v2/alerts" for url in config.urls]

    def fingerprint(self) -> str:
        return fingerprint_of(self.kind, *self.config.urls)

    def _headers(self) -> dict[str, str]:
        if self.config.bearer_token is None:
            return {}
        return {"Authorization": f"Bearer {self.config.bearer_token.get_secret_value()}"}

    def body(self, events: Sequence[Event], now: float | None = None) -> bytes:
        now = time.time() if now is None else now
        alerts = [
            postable_alert(
                e,
                now=now,
                valid_for=VALIDITY_FACTOR * self.config.resend_interval,
                generator_url=self.config.generator_url,
            )
            for e in events
        ]
        return json.dumps(alerts, ensure_ascii=False, allow_nan=False).encode()

    async def send(self, events: Sequence[Event]) -> Result:
        body = self.body(events)
        results = await asyncio.gather(*(self._post(url, body) for url in self.endpoints))
        return combine(results, len(self.endpoints))

    async def _post(self, url: str, body: bytes) -> Result:
        response = await post(self._client, url, body, self.config.timeout, self._headers())
        if isinstance(response, Result):
            return response
        return classify_status(response, body_reason(response, 80))

    async def probe(self) -> CheckResult:
        item = f"receiver/{self.name}"
        ready = 0
        problems: list[str] = []
        for url in self.config.urls:
            response = await probe_http(
                self._client, item, "GET", f"{url.rstrip('/')}/-/ready", 10.0
            )
            if isinstance(response, CheckResult):
                problems.append(f"{display_url(url)}: {response.detail}")
            elif response.status_code != 200:
                problems.append(f"{display_url(url)}: HTTP {response.status_code}")
            else:
                ready += 1
        total = len(self.config.urls)
        detail = f"{ready}/{total} Alertmanager instances ready"
        if problems:
            detail += "; " + "; ".join(problems)
        return CheckResult(item, ready > 0, detail)


def display_url(url: str) -> str:
    """The URL without any ``user:password@``, for messages."""
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(
            netloc=parts.hostname or "" if parts.port is None else f"{parts.hostname}:{parts.port}"
        )
    )


def combine(results: Sequence[Result], total: int) -> Result:
    """One result for a post to every instance (see the module docstring)."""
    accepted = [r for r in results if r.outcome is Outcome.DELIVERED]
    failed = [r.detail for r in results if r.outcome is not Outcome.DELIVERED]
    summary = f"{len(accepted)}/{total} instances accepted" + (
        f" ({'; '.join(failed)})" if failed else ""
    )
    if accepted:
        return Result(Outcome.DELIVERED, summary, accepted[0].status)
    retryable = [r for r in results if r.outcome is Outcome.RETRY]
    if retryable:
        waits = [r.retry_after for r in retryable if r.retry_after is not None]
        return Result(Outcome.RETRY, summary, retryable[0].status, min(waits) if waits else None)
    return Result(Outcome.PERMANENT, summary, results[0].status if results else None)

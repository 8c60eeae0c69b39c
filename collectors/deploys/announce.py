"""Telling people about a deploy: a PagerDuty change event and a Slack message.

PagerDuty Events API v2 change endpoint (``POST /v2/change/enqueue``, answered 202)::

    {"routing_key": "<32 chars>",
     "payload": {"summary": "shop v124 deployed (60a874b)", "timestamp": "2026-...Z",
                 "source": "app-monitor", "custom_details": {"app": ..., "version": ...}}}

Slack incoming webhook: ``{"text": "..."}``. Each message is tried three times (1 s,
then 5 s apart) in the background; a failure is logged without the URL or key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import structlog

from collectors.heroku_logs.releases import ReleaseEvent
from monitor.kernel.redact import describe_error

log = structlog.get_logger("collectors.deploys")

ATTEMPT_WAITS = (1.0, 5.0)
TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ChangeTarget:
    name: str
    kind: Literal["pagerduty", "slack"]
    url: str
    routing_key: str | None = None


def change_url(events_url: str) -> str:
    """The change endpoint beside a PagerDuty events URL (``.../v2/enqueue``)."""
    base = events_url.rstrip("/")
    if base.endswith("/v2/enqueue"):
        return base[: -len("/v2/enqueue")] + "/v2/change/enqueue"
    return base + "/v2/change/enqueue" if not base.endswith("/change/enqueue") else base


def headline(event: ReleaseEvent) -> str:
    commit = f" ({event.commit[:7]})" if event.commit else ""
    kind = {"rollback": "rolled back", "config": "config change"}.get(event.kind, "deployed")
    return f"{event.app} v{event.version} {kind}{commit}"


def pagerduty_body(event: ReleaseEvent, routing_key: str) -> dict[str, Any]:
    details: dict[str, Any] = {"app": event.app, "version": f"v{event.version}", "kind": event.kind}
    if event.commit:
        details["commit"] = event.commit
    if event.description:
        details["description"] = event.description
    return {
        "routing_key": routing_key,
        "payload": {
            "summary": headline(event)[:1024],
            "timestamp": datetime.fromtimestamp(event.released_at, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "source": "app-monitor",
            "custom_details": details,
        },
    }


def slack_body(event: ReleaseEvent) -> dict[str, Any]:
    text = f":rocket: {headline(event)}"
    if event.description:
        text += f"\n{event.description}"
    return {"text": text}


class Announcer:
    def __init__(
        self, targets: tuple[ChangeTarget, ...], client: httpx.AsyncClient | None = None
    ) -> None:
        self.targets = targets
        self._client = client
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0

    def announce(self, event: ReleaseEvent) -> None:
        for target in self.targets:
            task = asyncio.create_task(
                self._send(target, event), name=f"deploy-announce-{target.name}"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, target: ChangeTarget, event: ReleaseEvent) -> None:
        if target.kind == "pagerduty":
            body = pagerduty_body(event, target.routing_key or "")
        else:
            body = slack_body(event)
        content = json.dumps(body, ensure_ascii=False).encode()
        problem = ""
        for wait in (0.0, *ATTEMPT_WAITS):
            await asyncio.sleep(wait)
            try:
                response = await self._http().post(
                    target.url,
                    content=content,
                    headers={"Content-Type": "application/json"},
                    timeout=TIMEOUT,
                )
            except httpx.HTTPError as exc:
                problem = describe_error(exc)
                continue
            if response.status_code < 300:
                self.sent += 1
                log.info(
                    "deploy announced", receiver=target.name, app=event.app, version=event.version
                )
                return
            problem = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code != 429:
                break
        self.failed += 1
        log.warning("cannot announce deploy", receiver=target.name, app=event.app, error=problem)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def drain(self) -> None:
        """Wait for the messages under way (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self.drain()
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()

"""``heroku_rollback``: roll an app back when its newest release regressed.

Acts on a firing, critical ``ReleaseRegression`` only (labels from
``monitor_release_regression``: ``app``, ``version``, ``previous_version``,
``release_kind``, ``released_at``) and decides, in this order:

1. the release is itself a rollback -> skip (never loop);
2. this release was already handled by this process -> skip (once per release);
3. detected more than ``within`` after the deploy -> skip (too late to be sure);
4. ``dry_run`` (the default) -> log and announce what would be done;
5. the app's current release (``GET /apps/{app}/releases``, newest first) is no longer
   the regressed one -> skip (someone deployed or rolled back; this is also what makes
   a retry after a lost answer safe, and a restart harmless);
6. ``GET /apps/{app}/releases/{previous}`` for its id, then
   ``POST /apps/{app}/releases {"release": id}``: the rollback.

Every request carries ``Accept: application/vnd.heroku+json; version=3`` and the bearer
API key. Every decision is logged and sent, as a ``ReleaseRollback`` message, to every
other receiver (to PagerDuty as a change event: news, not an incident). Transport
errors and 5xx are retried (step 5 runs again first); other 4xx are permanent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from alerts.notify.events import Event, iso
from alerts.receivers.base import HttpReceiver, Outcome, Receiver, Result, classify_status, post
from alerts.receivers.config import HerokuRollbackConfig as Config
from alerts.receivers.pagerduty import PagerDutyReceiver
from monitor.kernel.redact import describe_error, register_secret
from monitor.kernel.source import CheckResult

log = structlog.get_logger("alerts.receivers.heroku_rollback")

RULE = "ReleaseRegression"
DECISION_RULE = "ReleaseRollback"
ACCEPT = "application/vnd.heroku+json; version=3"
ANNOUNCE_TIMEOUT = 15.0


def _version(text: str) -> int | None:
    text = text.strip().removeprefix("v")
    return int(text) if text.isdigit() else None


class HerokuRollbackReceiver(HttpReceiver):
    kind = "heroku_rollback"
    coalesce = False

    def __init__(self, name: str, config: Config, client: httpx.AsyncClient) -> None:
        super().__init__(name, config, client)
        self.config = config
        self.send_resolved = False
        self._handled: set[tuple[str, int]] = set()
        self._peers: list[Receiver] = []
        self.decisions: list[str] = []
        """Every decision made, newest last (tests, ``monitor check``)."""
        if config.api_key is not None:
            register_secret(config.api_key.get_secret_value())

    def tell(self, peers: Iterable[Receiver]) -> None:
        """The receivers every decision is announced to."""
        self._peers = [p for p in peers if p is not self]

    # -- the decision ----------------------------------------------------------------------

    async def send(self, events: Sequence[Event]) -> Result:
        (event,) = events
        if event.action != "trigger" or event.rule != RULE or event.test:
            return Result(Outcome.DELIVERED, "not a firing ReleaseRegression: ignored")
        labels = event.labels
        app = labels.get("app", "")
        version = _version(labels.get("version", ""))
        previous = _version(labels.get("previous_version", ""))
        if event.severity != "critical":
            return Result(Outcome.DELIVERED, "not critical: ignored")
        if not app or version is None:
            return await self._decide(event, "skip", "the alert names no app or version")
        key = (app, version)
        if labels.get("release_kind") == "rollback":
            return await self._decide(event, "skip", f"v{version} is itself a rollback")
        if key in self._handled:
            return Result(Outcome.DELIVERED, f"{app} v{version} already handled")
        if previous is None:
            self._handled.add(key)
            return await self._decide(event, "skip", f"no release before v{version} is known")
        released = labels.get("released_at", "")
        if released.isdigit() and event.active_at - float(released) > self.config.within:
            self._handled.add(key)
            late = event.active_at - float(released)
            return await self._decide(
                event, "skip", f"detected {late / 60:.0f} min after the deploy (over `within`)"
            )
        if self.config.dry_run:
            self._handled.add(key)
            return await self._decide(
                event, "dry-run", f"would roll {app} back from v{version} to v{previous}"
            )
        return await self._rollback(event, app, version, previous)

    async def _rollback(self, event: Event, app: str, version: int, previous: int) -> Result:
        key = (app, version)
        base = f"{self.config.api_url.rstrip('/')}/apps/{quote(app, safe='')}/releases"
        current = await self._request(
            "GET", base, headers={"Range": "version ..; order=desc, max=1"}
        )
        if isinstance(current, Result):
            return current
        if current.status_code >= 300:
            return await self._failed(event, key, classify_status(current), "reading releases")
        newest = _newest_version(current)
        if newest != version:
            self._handled.add(key)
            return await self._decide(
                event, "skip", f"{app} is at v{newest} now, not v{version}: nothing to undo"
            )
        target = await self._request("GET", f"{base}/{previous}")
        if isinstance(target, Result):
            return target
        if target.status_code >= 300:
            return await self._failed(event, key, classify_status(target), f"reading v{previous}")
        release_id = _field(target, "id")
        if not release_id:
            return await self._failed(
                event, key, Result(Outcome.PERMANENT, "release without id"), f"reading v{previous}"
            )
        body = json.dumps({"release": release_id}).encode()
        done = await self._request("POST", base, content=body)
        if isinstance(done, Result):
            return done
        if done.status_code >= 300:
            return await self._failed(event, key, classify_status(done), "creating the rollback")
        self._handled.add(key)
        new_version = _field(done, "version")
        return await self._decide(
            event,
            "rolled-back",
            f"rolled {app} back from v{version} to v{previous} (new release v{new_version})",
        )

    async def _failed(
        self, event: Event, key: tuple[str, int], result: Result, doing: str
    ) -> Result:
        if result.outcome is Outcome.RETRY:
            log.warning(
                "rollback retried", app=key[0], version=key[1], doing=doing, detail=result.detail
            )
            return result
        self._handled.add(key)
        await self._decide(event, "failed", f"Heroku refused {doing}: {result.detail}")
        return result

    async def _request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response | Result:
        key = self.config.api_key.get_secret_value() if self.config.api_key else ""
        try:
            return await self._client.request(
                method,
                url,
                content=content,
                headers={
                    "Accept": ACCEPT,
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/json",
                    **(headers or {}),
                },
                timeout=self.config.timeout,
            )
        except httpx.TimeoutException:
            return Result(Outcome.RETRY, f"no answer within {self.config.timeout:g}s")
        except httpx.HTTPError as exc:
            return Result(Outcome.RETRY, describe_error(exc))

    # -- telling everyone ------------------------------------------------------------------

    async def _decide(self, event: Event, decision: str, text: str) -> Result:
        labels = event.labels
        app, version = labels.get("app", "?"), labels.get("version", "?")
        self.decisions.append(f"{decision}: {text}")
        log.warning("rollback decision", decision=decision, app=app, version=version, detail=text)
        now = time.time()
        notice = Event(
            action="trigger",
            rule=DECISION_RULE,
            severity="warning",
            labels={
                "alertname": DECISION_RULE,
                "severity": "warning",
                "app": app,
                "version": version,
                "decision": decision,
            },
            summary=f"Rollback of {app} {version}: {decision}: {text}",
            description=f"Because: {event.summary}",
            value=None,
            threshold=None,
            active_at=now,
            fired_at=now,
            resolved_at=None,
            dedup_key=f"app-monitor/{DECISION_RULE}/{app}/{version}/{decision}",
        )
        for peer in self._peers:
            try:
                if isinstance(peer, PagerDutyReceiver):
                    # a change event: a decision is news, not an incident to resolve
                    result = await self._change_event(peer, notice)
                else:
                    result = await peer.send([notice])
            except Exception as exc:  # a peer's bug must not stop the others
                log.warning("rollback decision not announced", receiver=peer.name, error=repr(exc))
                continue
            if result.outcome is not Outcome.DELIVERED:
                log.warning(
                    "rollback decision not announced", receiver=peer.name, detail=result.detail
                )
        return Result(Outcome.DELIVERED, f"{decision}: {text}")

    async def _change_event(self, peer: PagerDutyReceiver, notice: Event) -> Result:
        """PagerDuty Events API v2 ``/v2/change/enqueue`` beside the peer's events URL."""
        url = peer.config.url.rstrip("/")
        url = url.removesuffix("/v2/enqueue") + "/v2/change/enqueue"
        body = {
            "routing_key": peer.routing_key(),
            "payload": {
                "summary": notice.summary[:1024],
                "timestamp": iso(notice.active_at),
                "source": "app-monitor",
                "custom_details": dict(notice.labels),
            },
        }
        response = await post(self._client, url, json.dumps(body).encode(), peer.config.timeout)
        return response if isinstance(response, Result) else classify_status(response)

    async def probe(self) -> CheckResult:
        item = f"receiver/{self.name}"
        mode = "dry run" if self.config.dry_run else "LIVE"
        if self.config.dry_run:
            return CheckResult(item, True, f"heroku_rollback ({mode}): calls nothing")
        response = await self._request("GET", f"{self.config.api_url.rstrip('/')}/account")
        if isinstance(response, Result):
            return CheckResult(item, False, response.detail)
        ok = response.status_code == 200
        return CheckResult(
            item, ok, f"heroku_rollback ({mode}): Platform API HTTP {response.status_code}"
        )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _newest_version(response: httpx.Response) -> int | None:
    data = _json(response)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        value = data[0].get("version")
        return value if isinstance(value, int) else None
    return None


def _field(response: httpx.Response, name: str) -> str:
    data = _json(response)
    if isinstance(data, dict):
        value = data.get(name)
        return str(value) if value is not None else ""
    return ""

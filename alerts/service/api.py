"""The HTTP API: ``GET /alerts``, ``GET|POST /silences``, ``DELETE /silences/{id}``.

Guarded by the daemon's auth (bearer token or basic auth) when it is configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alerts import templates
from alerts.instance import Clock
from alerts.notify.coordinator import AlertEngine
from alerts.notify.delivery import system_clock
from alerts.notify.events import iso
from alerts.runtime_silences import (
    SilenceError,
    add_silence,
    parse_request,
    silence_json,
    silences_json,
)
from alerts.service.silence_sync import SilenceSync
from alerts.silences import ActiveSilence
from alerts.statedb import StateDbError
from monitor.kernel.http import Authenticator, forbidden_without_credentials, read_json_change

log = structlog.get_logger("alerts")

_STATE_ORDER = {"firing": 0, "pending": 1}
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def alerts_json(engine: AlertEngine, now: Clock | None = None) -> list[dict[str, Any]]:
    """The alert instances, firing first, then by severity, rule and detection time."""
    now = now or system_clock()
    out = []
    for instance in engine.state.instances.values():
        labels = engine.alert_labels(instance)
        summary, description = engine.render(instance)
        links = engine.renderer.links(instance)
        out.append(
            {
                "rule": instance.rule,
                "state": instance.state.value,
                "severity": instance.severity,
                "labels": labels,
                "summary": summary,
                "description": description,
                "value": templates.as_float(instance.value),
                "threshold": templates.as_float(instance.threshold),
                "active_at": iso(instance.active_at),
                "fired_at": iso(instance.fired_at),
                "silenced": engine.silences.silencing(labels, now.wall) is not None,
                "runbook_url": links[0],
                "dashboard_url": links[1],
            }
        )
    out.sort(
        key=lambda a: (
            _STATE_ORDER[str(a["state"])],
            _SEVERITY_RANK.get(str(a["severity"]), 3),
            str(a["rule"]),
            str(a["active_at"]),
        )
    )
    return out


class AlertsApi:
    def __init__(
        self,
        engine: AlertEngine,
        silence_sync: SilenceSync,
        authenticator: Authenticator,
        role: Callable[[], str],
        max_silence: float,
    ) -> None:
        self.max_silence = max_silence
        self.engine = engine
        self.sync = silence_sync
        self.db = silence_sync.db
        self.auth = authenticator
        self.role = role

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/alerts", self.alerts, methods=["GET"]),
            Route("/silences", self.list_silences, methods=["GET"]),
            Route("/silences", self.add_silence, methods=["POST"]),
            Route("/silences/{silence_id}", self.expire_silence, methods=["DELETE"]),
        ]

    async def alerts(self, request: Request) -> Response:
        if not self.auth.allows(request):
            return self.auth.challenge()
        return JSONResponse(
            {"role": self.role(), "leader": self.engine.leader, "alerts": alerts_json(self.engine)},
            headers={"Cache-Control": "no-store"},
        )

    async def list_silences(self, request: Request) -> Response:
        if not self.auth.allows(request):
            return self.auth.challenge()
        fresh = await self.sync.refresh()
        return JSONResponse(
            {"silences": silences_json(self.sync.silences), "fresh": fresh},
            headers={"Cache-Control": "no-store"},
        )

    async def add_silence(self, request: Request) -> Response:
        body = await read_json_change(request, self.auth, "POST /silences")
        if isinstance(body, Response):
            return body
        now = time.time()
        who = self.auth.identity(request)
        try:
            row = parse_request(body, now, created_by=who, max_silence=self.max_silence)
        except SilenceError as exc:
            return _error(400, str(exc))
        try:
            await add_silence(self.db, row)
        except StateDbError as exc:
            return _error(503, f"cannot store the silence: {exc}")
        await self.sync.refresh()
        log.info(
            "silence added",
            id=row.id,
            created_by=row.created_by,
            requested_by=who,
            matchers=row.matchers,
            matchers_re=row.matchers_re,
            ends_at=iso(row.ends_at),
            comment=row.comment,
        )
        added = next((s for s in self.sync.silences.all() if s.id == row.id), None)
        if added is None:  # the database could not be read back: answer from the row
            added = ActiveSilence.of_row(row)
        return JSONResponse(silence_json(added, now), status_code=201)

    async def expire_silence(self, request: Request) -> Response:
        if not self.auth.required:
            return forbidden_without_credentials("DELETE /silences")
        if not self.auth.allows(request):
            return self.auth.challenge()
        silence_id = request.path_params["silence_id"]
        try:
            found = await self.db.expire_silence(silence_id, time.time())
        except StateDbError as exc:
            return _error(503, f"cannot expire the silence: {exc}")
        if not found:
            if silence_id.startswith("config-"):
                return _error(404, f"{silence_id} is a config silence: change the configuration")
            return _error(404, f"no runtime silence with id {silence_id!r}")
        log.info("silence expired", id=silence_id, requested_by=self.auth.identity(request))
        await self.sync.refresh()
        return Response(status_code=204)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)

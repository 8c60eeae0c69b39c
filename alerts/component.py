"""The alerting component: evaluate after each collection, deliver while leading.

Roles:

* **leader**: holds the lock (``flock`` on the SQLite file, or a PostgreSQL advisory
  lock); persists state, dispatches and delivers.
* **follower**: another daemon leads (Heroku starts the new dyno before the old one
  stops); it evaluates in memory, serves ``/alerts``, and retries the lock every
  ``state.lock_retry``. On taking over it loads the stored state, so firing alerts stay
  firing without a new page and resolves still go out.
* **degraded**: the state store cannot be reached; the daemon delivers from memory
  (fail-open: a PostgreSQL outage must still page) and writes the state once it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import structlog
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alerts import templates
from alerts.delivery import Delivery, system_clock
from alerts.engine import AlertEngine
from alerts.events import iso
from alerts.instance import Clock, State
from alerts.metrics import AlertMetrics
from alerts.receivers import build_receivers, http_client
from alerts.routing import Router
from alerts.ruleset import build_rules
from alerts.runtime_silences import (
    SilenceError,
    add_silence,
    load_into,
    parse_request,
    silence_json,
    silences_json,
)
from alerts.series import ViewBuilder
from alerts.silences import ActiveSilence, Silences
from alerts.state import StateStoreError, open_state_store
from collectors.base import CheckResult
from monitor.components import Component, Context
from monitor.http import Authenticator

log = structlog.get_logger("alerts")

STOP_GRACE = 3.0
DRAIN_TIME = 3.0
SILENCE_POLL = 2.0
EVALUATION_SHARE = 0.05
"""Rule evaluation runs on the event loop after collections; after an evaluation that
took t seconds, the next one waits t * (1 / share - 1) seconds (requests meanwhile
coalesce into it), so evaluation takes at most this share of the loop however many jobs
finish per second: a 10 ms evaluation waits 0.19 s, a 100 ms one 1.9 s."""
MAX_EVALUATION_PAUSE = 5.0
"""Seconds between re-reads of the runtime silences (added by any dyno or the CLI)."""


class AlertingComponent(Component):
    name = "alerting"

    def __init__(self, context: Context) -> None:
        self.config = context.config
        self.snapshots = context.store
        self.exposition = context.exposition
        self.ruleset = build_rules(self.config)
        self.client = http_client()
        self.receivers, self.fallback = build_receivers(self.config, self.client)
        self.router = Router(self.config.routes, list(self.config.receivers), self.fallback)
        self.silences = Silences(self.config.silences)
        self.store = open_state_store(self.config.state)
        self.leadership = self.store.leadership()
        self.engine = AlertEngine(
            self.ruleset,
            self.router,
            self.silences,
            self.receivers,
            self.store,
            on_enqueue=self._wake,
            on_change=self._changed,
            on_receivers_change=self.request_evaluation,
        )
        self.delivery = Delivery(self.engine, self.receivers, self.silences)
        self.views = ViewBuilder()
        self.role = "starting"
        self._opened = False
        self._evaluate: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._authenticator = Authenticator(self.config.http)
        self._silences_failing = False

    # ------------------------------------------------------------------ hooks

    def _wake(self, receiver: str) -> None:
        self.delivery.wake(receiver)

    def _changed(self) -> None:
        self.exposition.extra_generation += 1

    def request_evaluation(self) -> None:
        if self._evaluate is not None:
            self._evaluate.set()

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/alerts", self._alerts, methods=["GET"]),
            Route("/silences", self._list_silences, methods=["GET"]),
            Route("/silences", self._add_silence, methods=["POST"]),
            Route("/silences/{silence_id}", self._expire_silence, methods=["DELETE"]),
        ]

    def collectors(self) -> Sequence[Collector]:
        return [AlertMetrics(self.engine)]

    async def start(self) -> None:
        self._evaluate = asyncio.Event()
        await self._elect(system_clock())
        await self.refresh_silences()  # before the first delivery of a stored outbox
        self.delivery.start()
        self._tasks = [
            asyncio.create_task(self._evaluation_loop(), name="alerts-evaluate"),
            asyncio.create_task(self._leader_loop(), name="alerts-leader"),
            asyncio.create_task(self._silence_loop(), name="alerts-silences"),
        ]
        log.info(
            "alerting started",
            rules=len(self.ruleset.rules),
            receivers=sorted(self.receivers),
            state=self.store.description,
            role=self.role,
        )

    async def after_collection(self) -> None:
        self.request_evaluation()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.delivery.stop(STOP_GRACE)
        if self.engine.leader:
            await self.delivery.drain(time.monotonic() + DRAIN_TIME)
            await self.engine.flush(system_clock())
        with contextlib.suppress(Exception):
            await self.leadership.release()
        with contextlib.suppress(Exception):
            await self.store.close()
        await self.client.aclose()

    # ------------------------------------------------------------------ evaluation

    async def evaluate_once(self, now: Clock | None = None) -> None:
        now = now or system_clock()
        started = time.perf_counter()
        view = self.views.build(self.snapshots, self.engine.receivers_up())
        self.engine.evaluate(view, now)
        self.engine.counters.last_eval_seconds = time.perf_counter() - started
        self.engine.counters.evaluations += 1
        await self.engine.flush(now)

    async def _evaluation_loop(self) -> None:
        assert self._evaluate is not None
        while True:
            await self._evaluate.wait()
            self._evaluate.clear()
            started = time.perf_counter()
            try:
                await self.evaluate_once()
            except Exception:
                log.exception("rule evaluation failed")
            spent = time.perf_counter() - started
            await asyncio.sleep(min(MAX_EVALUATION_PAUSE, spent * (1 / EVALUATION_SHARE - 1)))

    # ------------------------------------------------------------------ leadership

    async def _leader_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.state.lock_retry)
            try:
                if self.role == "leader":
                    try:
                        held = await self.leadership.still_held()
                    except StateStoreError as exc:
                        self._degrade(str(exc))
                        continue
                    if held:
                        continue
                await self._elect(system_clock())
            except Exception:
                log.exception("leader election failed")

    def _degrade(self, reason: str) -> None:
        if self.role != "degraded":
            log.error(
                "alert state store unreachable; delivering from memory until it is back",
                error=reason,
            )
        self.role = "degraded"
        self.engine.lead_in_memory()

    async def _elect(self, now: Clock) -> None:
        try:
            if not self._opened:
                await self.store.open()
                self._opened = True
            got = await self.leadership.try_acquire()
        except StateStoreError as exc:
            self._degrade(str(exc))
            return
        if not got:
            if self.role != "follower":
                log.info("another daemon is the alerting leader; standing by")
                self.engine.step_down()
                self.role = "follower"
            return
        if self.role == "leader":
            return
        try:
            data = await self.store.load()
        except StateStoreError as exc:
            await self.leadership.release()
            self._degrade(str(exc))
            return
        self.engine.adopt(data, now, keep_memory=self.role == "degraded")
        previous, self.role = self.role, "leader"
        await self.engine.flush(now)
        log.info(
            "alerting leader",
            previously=previous,
            firing=sum(1 for i in self.engine.state.instances.values() if i.state is State.FIRING),
            queued=self.engine.pending_count(),
        )
        self.request_evaluation()

    # ------------------------------------------------------------------ runtime silences

    async def refresh_silences(self) -> bool:
        """Re-read the runtime silences from the store; False when it cannot be read
        (the last ones read stay in force)."""
        try:
            changed = await load_into(self.store, self.silences)
        except StateStoreError as exc:
            if not self._silences_failing:
                log.warning("cannot read runtime silences; keeping the last ones", error=str(exc))
            self._silences_failing = True
            return False
        if self._silences_failing:
            log.info("runtime silences read again")
            self._silences_failing = False
        if changed:
            self._changed()
            self.request_evaluation()  # an ended silence lets its alerts be notified
        return True

    async def _silence_loop(self) -> None:
        while True:
            await asyncio.sleep(SILENCE_POLL)
            try:
                await self.refresh_silences()
            except Exception:
                log.exception("reading runtime silences failed")

    async def _list_silences(self, request: Request) -> Response:
        if not self._authenticator.allows(request):
            return self._authenticator.challenge()
        fresh = await self.refresh_silences()
        return JSONResponse(
            {"silences": silences_json(self.silences), "fresh": fresh},
            headers={"Cache-Control": "no-store"},
        )

    async def _add_silence(self, request: Request) -> Response:
        if not self._authenticator.allows(request):
            return self._authenticator.challenge()
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "body: not valid JSON")
        now = time.time()
        try:
            row = parse_request(body, now, created_by="api")
        except SilenceError as exc:
            return _error(400, str(exc))
        try:
            await add_silence(self.store, row)
        except StateStoreError as exc:
            return _error(503, f"cannot store the silence: {exc}")
        await self.refresh_silences()
        log.info("silence added", id=row.id, created_by=row.created_by)
        added = next((s for s in self.silences.all() if s.id == row.id), None)
        if added is None:  # the store could not be read back: answer from the row
            added = ActiveSilence.of_row(row)
        return JSONResponse(silence_json(added, now), status_code=201)

    async def _expire_silence(self, request: Request) -> Response:
        if not self._authenticator.allows(request):
            return self._authenticator.challenge()
        silence_id = request.path_params["silence_id"]
        try:
            found = await self.store.expire_silence(silence_id, time.time())
        except StateStoreError as exc:
            return _error(503, f"cannot expire the silence: {exc}")
        if not found:
            if silence_id.startswith("config-"):
                return _error(404, f"{silence_id} is a config silence: change the configuration")
            return _error(404, f"no runtime silence with id {silence_id!r}")
        log.info("silence expired", id=silence_id)
        await self.refresh_silences()
        return Response(status_code=204)

    # ------------------------------------------------------------------ /alerts

    def alerts_json(self, now: Clock | None = None) -> list[dict[str, Any]]:
        now = now or system_clock()
        out = []
        for instance in self.engine.state.instances.values():
            labels = self.engine.alert_labels(instance)
            summary, description = self.engine.render(instance)
            rule = self.engine.rules_by_name.get(instance.rule)
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
                    "silenced": self.silences.silencing(labels, now.wall) is not None,
                    "runbook_url": rule.runbook_url if rule else None,
                    "dashboard_url": rule.dashboard_url if rule else None,
                }
            )
        order = {"firing": 0, "pending": 1}
        rank = {"critical": 0, "warning": 1, "info": 2}
        out.sort(
            key=lambda a: (
                order[str(a["state"])],
                rank.get(str(a["severity"]), 3),
                str(a["rule"]),
                str(a["active_at"]),
            )
        )
        return out

    async def _alerts(self, request: Request) -> Response:
        if not self._authenticator.allows(request):
            return self._authenticator.challenge()
        return JSONResponse(
            {
                "role": self.role,
                "leader": self.engine.leader,
                "alerts": self.alerts_json(),
            },
            headers={"Cache-Control": "no-store"},
        )

    # ------------------------------------------------------------------ monitor check

    async def check(self) -> Sequence[CheckResult]:
        from alerts.oneshot import check_rules, check_store

        results = [check_rules(self.ruleset), await check_store(self.store)]
        probes = await asyncio.gather(*(r.probe() for r in self.receivers.values()))
        results.extend(probes)
        await self.client.aclose()
        return results

    async def report_once(self, *, notify: bool, fmt: str = "prometheus") -> None:
        """``monitor once``: print what would fire; with ``notify``, send it."""
        from alerts.oneshot import report_once

        await report_once(self, notify=notify, fmt=fmt)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def components(context: Context) -> list[Component]:
    """The factory listed in :func:`monitor.components.component_factories`."""
    return [AlertingComponent(context)]

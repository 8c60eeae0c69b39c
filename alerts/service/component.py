"""The alerting component: its parts wired together, started and stopped.

Evaluate after each collection; deliver while leading. The parts:
:mod:`alerts.notify` (the engine and its delivery workers),
:mod:`alerts.service.leadership` (leader, follower, degraded),
:mod:`alerts.service.silence_sync` (runtime silences re-read from the state database),
:mod:`alerts.service.api` (``/alerts``, ``/silences``),
:mod:`alerts.service.metrics` (self-metrics), :mod:`alerts.service.oneshot`
(``monitor check`` and ``monitor once``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import structlog
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute

from alerts.evaluator import evaluate
from alerts.instance import Clock
from alerts.notify.coordinator import AlertEngine
from alerts.notify.delivery import Delivery, system_clock
from alerts.receivers.registry import build_receivers, http_client
from alerts.routing import Router
from alerts.rules.ruleset import build_rules
from alerts.series import ViewBuilder
from alerts.service import oneshot
from alerts.service.api import AlertsApi, alerts_json
from alerts.service.config import AlertingConfig
from alerts.service.leadership import Leadership
from alerts.service.metrics import AlertMetrics
from alerts.service.silence_sync import SilenceSync
from alerts.silences import Silences
from alerts.statedb import open_state_db
from monitor.kernel.component import Component, Context
from monitor.kernel.http import Authenticator
from monitor.kernel.source import CheckResult

log = structlog.get_logger("alerts")

STOP_GRACE = 3.0
DRAIN_TIME = 3.0
EVALUATION_SHARE = 0.02
"""Rule evaluation runs after collections; after an evaluation that took t seconds, the
next one waits t * (1 / share - 1) seconds (requests meanwhile coalesce into it), so
evaluation takes at most this share of a core however many jobs finish per second: a
20 ms evaluation waits 1 s, a 100 ms one 4.9 s. A fleet of 140 targets (2,300 statement
series for the regression rule) evaluates in ~50 ms: at 5% it cost 3% of a core for
evaluations every second or so, most of them over unchanged data."""
MAX_EVALUATION_PAUSE = 5.0
MIN_EVALUATION_GAP = 1.0
"""At most one evaluation a second: fifty custom queries or a fleet's hundreds of jobs
finish at scattered moments of each interval, and evaluating after each of them bought
nothing (rules hold for tens of seconds) but cost a few percent of a core."""


class AlertingComponent(Component):
    name = "alerting"

    def __init__(self, section: AlertingConfig, context: Context) -> None:
        self.section = section
        self.snapshots = context.store
        self.exposition = context.exposition
        self.ruleset = build_rules(section.rules, postgres_targets=section.postgres_targets)
        self.client = http_client()
        self.receivers, self.fallback = build_receivers(section.receivers, self.client)
        self.router = Router(section.routes, list(section.receivers), self.fallback)
        self.silences = Silences(section.silences)
        self.db = open_state_db(section.state)
        self.engine = AlertEngine(
            self.ruleset,
            self.router,
            self.silences,
            self.receivers,
            self.db,
            on_enqueue=self._wake,
            on_change=self._changed,
            on_receivers_change=self.request_evaluation,
        )
        state = section.state
        self.leadership = Leadership(
            self.db,
            self.engine,
            retry=state.lock_retry,
            renew=state.lease_renew,
            lease=state.lease,
            on_lead=self.request_evaluation,
        )
        self.delivery = Delivery(
            self.engine.outbox, self.receivers, self.silences, permit=self.leadership.may_deliver
        )
        self.silence_sync = SilenceSync(self.db, self.silences, on_change=self._silences_changed)
        self.api = AlertsApi(
            self.engine,
            self.silence_sync,
            Authenticator(section.http),
            lambda: self.role,
            section.max_silence,
        )
        self.views = ViewBuilder()
        self._evaluate: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def role(self) -> str:
        return self.leadership.role

    # ------------------------------------------------------------------ hooks

    def _wake(self, receiver: str) -> None:
        self.delivery.wake(receiver)

    def _changed(self) -> None:
        self.exposition.extra_generation += 1

    def _silences_changed(self) -> None:
        self._changed()
        self.request_evaluation()  # an ended silence lets its alerts be notified

    def request_evaluation(self) -> None:
        if self._evaluate is not None:
            self._evaluate.set()

    def routes(self) -> Sequence[BaseRoute]:
        return self.api.routes()

    def collectors(self) -> Sequence[Collector]:
        return [AlertMetrics(self.engine)]

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._evaluate = asyncio.Event()
        await self.leadership.elect(system_clock())
        await self.silence_sync.refresh()  # before the first delivery of a stored outbox
        self.delivery.start()
        self._tasks = [
            asyncio.create_task(self._evaluation_loop(), name="alerts-evaluate"),
            asyncio.create_task(self.leadership.run(), name="alerts-leader"),
            asyncio.create_task(self.silence_sync.run(), name="alerts-silences"),
            asyncio.create_task(self._warn_pooling(), name="alerts-pooling"),
        ]
        log.info(
            "alerting started",
            rules=len(self.ruleset.rules),
            receivers=sorted(self.receivers),
            state=self.db.description,
            role=self.role,
        )

    async def _warn_pooling(self) -> None:
        problem = await self.db.pooling_problem()
        if problem is not None:
            log.warning("alert state store behind a connection pooler", problem=problem)

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
            await self.db.close()
        await self.client.aclose()

    # ------------------------------------------------------------------ evaluation

    async def evaluate_once(self, now: Clock | None = None) -> None:
        now = now or system_clock()
        started = time.perf_counter()
        view = self.views.build(self.snapshots, self.engine.receivers_up())
        # the rules' pure evaluation runs in a worker thread, so ten thousand statement
        # series never hold the event loop (the view, state and history are immutable)
        state = self.engine.state
        result = await asyncio.to_thread(evaluate, self.engine.rules, view, state, now)
        if self.engine.state is state:
            self.engine.apply(result, now)
        else:  # taken over from the state database meanwhile: again, on the loop
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
            pause = min(MAX_EVALUATION_PAUSE, spent * (1 / EVALUATION_SHARE - 1))
            await asyncio.sleep(max(MIN_EVALUATION_GAP, pause))

    def alerts_json(self, now: Clock | None = None) -> list[dict[str, Any]]:
        return alerts_json(self.engine, now)

    # ------------------------------------------------------------------ monitor check / once

    async def check(self) -> Sequence[CheckResult]:
        results = [oneshot.check_rules(self.ruleset), await oneshot.check_state_db(self.db)]
        probes = await asyncio.gather(*(r.probe() for r in self.receivers.values()))
        results.extend(probes)
        await self.client.aclose()
        return results

    async def report_once(self, *, notify: bool, fmt: str = "prometheus") -> None:
        """``monitor once``: print what would fire; with ``notify``, send it."""
        await oneshot.report_once(self, notify=notify, fmt=fmt)


def components(section: AlertingConfig, context: Context) -> list[Component]:
    """The alerting plug-in: its factory takes only the alerting section."""
    return [AlertingComponent(section, context)]

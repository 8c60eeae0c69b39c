"""The log drain component: routes, the collector, the rule-window job, and the
background writer of release events.

Enabled by ``log_drain`` (or ``LOG_DRAIN_PASSWORD``). Without it, ``POST /logs`` still
answers, with 403 and how to enable it, so a drain pointed at the daemon too early says
why in ``heroku logs`` (L-errors) instead of a bare 404.

On a Heroku ``worker`` dyno (``$DYNO`` is ``worker.N``) the drain is not run even when
configured: config vars are shared by the app's dynos, but the router sends HTTP only to
``web`` dynos, so a worker would never receive a batch, and its ``HerokuDrainSilent``
would page about a drain that works (see deploy/heroku/README.md, "Which shape").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence

import structlog
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.config import LogDrainConfig
from collectors.heroku_logs.endpoint import DISABLED_TEXT, DrainEndpoint
from collectors.heroku_logs.ingest import Ingestor
from collectors.heroku_logs.metrics import DrainCollector
from collectors.heroku_logs.release_log import ReleaseLog, ReleaseLogError, open_release_log
from collectors.heroku_logs.releases import ReleaseEvent
from collectors.heroku_logs.window_job import DrainWindowJob
from monitor.kernel.component import Component, Context
from monitor.kernel.exposition import Exposition
from monitor.kernel.source import CheckResult, CollectorJob

log = structlog.get_logger("collectors.heroku_logs")

QUEUE_MAX = 10_000
LOAD_RECENT = 50
"""Releases per app read back at start (for de-duplication and the current release)."""


class LogDrainComponent(Component):
    name = "log_drain"

    def __init__(
        self,
        config: LogDrainConfig,
        exposition: Exposition,
        interval: float,
        release_log: ReleaseLog,
    ) -> None:
        self.config = config
        self._exposition = exposition
        self.state = DrainState(
            window=config.window, stale_after=config.stale_after, max_series=config.max_series
        )
        self.ingestor = Ingestor(config, self.state, self._queue_release)
        self.endpoint = DrainEndpoint(config, self.ingestor, on_change=self._changed)
        self.window_job = DrainWindowJob(config, self.state, interval)
        self.release_log = release_log
        self._queue: asyncio.Queue[ReleaseEvent] | None = None
        self._pending: list[ReleaseEvent] = []
        self._task: asyncio.Task[None] | None = None
        self.releases_lost = 0

    def _changed(self) -> None:
        self._exposition.extra_generation += 1

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/logs", self.endpoint.handle, methods=["POST"]),
            Route("/logs/{app}", self.endpoint.handle, methods=["POST"]),
        ]

    def collectors(self) -> Sequence[Collector]:
        return [DrainCollector(self.state, lambda: self.ingestor.releases.latest)]

    def jobs(self) -> Sequence[CollectorJob]:
        return [self.window_job]

    def _queue_release(self, event: ReleaseEvent) -> None:
        if self._queue is None:
            self._pending.append(event)  # before start (tests driving the ingestor)
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.releases_lost += 1

    async def start(self) -> None:
        self._queue = asyncio.Queue(QUEUE_MAX)
        for event in self._pending:
            self._queue.put_nowait(event)
        self._pending.clear()
        self._task = asyncio.create_task(self._writer(), name="heroku-release-writer")

    async def _load(self) -> None:
        for app in await self.release_log.apps():
            for event in reversed(await self.release_log.recent(app, LOAD_RECENT)):
                self.ingestor.releases.remember(event)
        self._changed()

    async def _writer(self) -> None:
        assert self._queue is not None
        loaded = False
        while True:
            if not loaded:
                try:
                    await self.release_log.open()
                    await self._load()
                    loaded = True
                except ReleaseLogError as exc:
                    log.warning("release log unavailable", error=str(exc))
                    await asyncio.sleep(5)
                    continue
            event = await self._queue.get()
            while True:
                try:
                    await self.release_log.record(event)
                    break
                except ReleaseLogError as exc:
                    log.warning("cannot store release", app=event.app, error=str(exc))
                    await asyncio.sleep(5)
            self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every queued release is stored (tests, shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    async def stop(self) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self.flush()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(ReleaseLogError):
            await self.release_log.close()

    async def check(self) -> Sequence[CheckResult]:
        if not self.config.has_credential:
            warning = "no drain credential (log_drain.password): POST /logs answers 403"
            return [CheckResult("log_drain", True, "disabled", (warning,))]
        routes = len(self.config.routes)
        detail = (
            f"POST /logs/<app>; {routes} route patterns; releases in {self.release_log.description}"
        )
        return [CheckResult("log_drain", True, detail)]


class DisabledDrain(Component):
    """``POST /logs`` without ``log_drain``: 403 with how to enable it."""

    name = "log_drain_disabled"

    async def _handle(self, request: Request) -> Response:
        return Response(DISABLED_TEXT, 403, media_type="text/plain")

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/logs", self._handle, methods=["POST"]),
            Route("/logs/{app}", self._handle, methods=["POST"]),
        ]


WORKER_TEXT = (
    "log drain not run on this worker dyno: Heroku routes HTTP (and so the drain) only to "
    "web dynos. With a log drain, run the web shape alone (heroku ps:scale web=1 worker=0): "
    "in a web + worker pair the Heroku* rules page only while the web dyno is the alerting "
    "leader (deploy/heroku/README.md)\n"
)


class WorkerDyno(Component):
    """``log_drain`` configured on a ``worker`` dyno: not run, and said so."""

    name = "log_drain_worker"

    def __init__(self, dyno: str) -> None:
        self.dyno = dyno

    async def _handle(self, request: Request) -> Response:
        return Response(WORKER_TEXT, 403, media_type="text/plain")

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/logs", self._handle, methods=["POST"]),
            Route("/logs/{app}", self._handle, methods=["POST"]),
        ]

    async def start(self) -> None:
        log.warning(WORKER_TEXT.strip(), dyno=self.dyno)

    async def check(self) -> Sequence[CheckResult]:
        return [CheckResult("log_drain", True, f"not run on {self.dyno}", (WORKER_TEXT.strip(),))]


def components(
    config: LogDrainConfig | None,
    state_url: str,
    context: Context,
    environ: Mapping[str, str] = os.environ,
) -> Sequence[Component]:
    """The drain endpoint; releases are kept in the state database at ``state_url``."""
    if config is None:
        return [DisabledDrain()]
    dyno = environ.get("DYNO", "")
    if dyno.startswith("worker."):
        return [WorkerDyno(dyno)]
    release_log = open_release_log(state_url)
    return [LogDrainComponent(config, context.exposition, context.interval, release_log)]

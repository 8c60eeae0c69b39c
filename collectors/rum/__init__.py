"""Browser beacons from the web-vitals library: the ``POST /vitals`` component.

Enabled by ``targets.rum``. Beacons are validated (:mod:`.beacon`), labelled by route
pattern (:mod:`.routes`), de-duplicated and aggregated into histograms
(:mod:`.aggregate`), and exported by a custom collector (:mod:`.metrics`). The last
``window`` of them (:mod:`.recent`) goes into the snapshot store through a collector
job (:mod:`.window_job`), where the Rum* rules see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Route

from collectors.rum.aggregate import Aggregator
from collectors.rum.config import RumConfig
from collectors.rum.endpoint import VitalsEndpoint
from collectors.rum.metrics import RumCollector
from collectors.rum.window_job import RumWindowJob
from monitor.kernel.component import Component, Context
from monitor.kernel.exposition import Exposition
from monitor.kernel.source import CheckResult, CollectorJob

FLUSH_INTERVAL = 1.0
"""How often settled CLS/INP values are counted and expired ids forgotten."""


class RumComponent(Component):
    name = "rum"

    def __init__(self, config: RumConfig, exposition: Exposition, interval: float) -> None:
        self.config = config
        self._exposition = exposition
        self.aggregator = Aggregator(config)
        self.window_job = RumWindowJob(config, self.aggregator.recent, interval)
        self.endpoint = VitalsEndpoint(config, self.aggregator, on_change=self._changed)
        self._task: asyncio.Task[None] | None = None

    def _changed(self) -> None:
        self._exposition.extra_generation += 1

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/vitals", self.endpoint.handle, methods=["POST", "OPTIONS"])]

    def collectors(self) -> Sequence[Collector]:
        return [RumCollector(self.config.name, self.aggregator, self.endpoint)]

    def jobs(self) -> Sequence[CollectorJob]:
        return [self.window_job]

    def flush(self, *, everything: bool = False) -> None:
        if self.aggregator.flush(time.monotonic(), everything=everything):
            self._changed()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.flush()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_loop(), name="rum-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.flush(everything=True)

    async def check(self) -> Sequence[CheckResult]:
        origins = ", ".join(self.config.allowed_origins)
        routes = len(self.config.routes)
        detail = f"POST /vitals from {origins}; {routes} route patterns"
        return [CheckResult("rum/vitals", True, detail)]


def components(rum: RumConfig | None, context: Context) -> Sequence[Component]:
    if rum is None:
        return []
    return [RumComponent(rum, context.exposition, context.interval)]

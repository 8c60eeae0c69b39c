"""How late the event loop runs a periodic tick: ``monitor_event_loop_lag_seconds``.

Everything the daemon does shares one asyncio loop (collectors, scrapes, beacons, alert
delivery), so anything that holds it (a long render, a blocking call) delays all of it.
A tick is scheduled every :data:`TICK_INTERVAL` seconds with ``loop.call_at``; how much
later than its due time it runs is observed into a histogram::

    monitor_event_loop_lag_seconds_bucket{le="0.005"} 1190.0
    monitor_event_loop_lag_seconds_count 1200.0
    monitor_event_loop_lag_seconds_sum 0.21

The histogram's samples reach a scrape with the next render (after the next collection).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from prometheus_client import Histogram
from prometheus_client.registry import Collector

from monitor.kernel.component import Component, Context

TICK_INTERVAL = 0.25
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LoopLagProbe:
    """Schedules ticks on the running loop and reports each one's lateness."""

    def __init__(self, interval: float, observe: Callable[[float], None]) -> None:
        self._interval = interval
        self._observe = observe
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self._interval
        self._handle = loop.call_at(self._due, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        self._observe(max(0.0, now - self._due))
        self._due = now + self._interval
        self._handle = loop.call_at(self._due, self._tick, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def lag_histogram() -> Histogram:
    return Histogram(
        "monitor_event_loop_lag_seconds",
        "How late the event loop ran a periodic tick",
        unit="seconds",
        buckets=BUCKETS,
        registry=None,
    )


class LoopLagMonitor(Component):
    name = "loop_lag"

    def __init__(self, interval: float = TICK_INTERVAL) -> None:
        self.histogram = lag_histogram()
        self._probe = LoopLagProbe(interval, self.histogram.observe)

    def collectors(self) -> Sequence[Collector]:
        return (self.histogram,)

    async def start(self) -> None:
        self._probe.start()

    async def stop(self) -> None:
        self._probe.stop()


def components(context: Context) -> Sequence[Component]:
    return (LoopLagMonitor(),)

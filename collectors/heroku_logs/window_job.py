"""The last ``log_drain.window`` of drain data, as samples in the snapshot store, where
the Heroku* rules see them (the cumulative series are rendered by :mod:`.metrics`).

Exposition (``target`` is ``log_drain.name``; ratio and p95 only from ``min_requests``)::

    heroku_router_window_requests{target="log_drain",app="shop",window="5m"} 1200
    heroku_router_window_5xx_ratio{target="log_drain",app="shop",window="5m"} 0.004
    heroku_router_window_service_p95_seconds{target="log_drain",app="shop",window="5m"} 0.21
    heroku_router_window_errors{target="log_drain",app="shop",code="H12",window="5m"} 3
    heroku_dyno_window_errors{target="log_drain",app="shop",process="web.2",code="R14",...} 1
    heroku_dyno_window_crashes{target="log_drain",app="shop",process="worker.1",window="5m"} 1
    heroku_logplex_window_dropped_messages{target="log_drain",app="shop",window="5m"} 1234
    heroku_drain_seconds_since_last_batch{target="log_drain",app="shop"} 4.2
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.config import LogDrainConfig
from collectors.heroku_logs.histogram import SERVICE_BOUNDS, quantile
from monitor.kernel.durations import format_duration
from monitor.kernel.snapshot import Sample, gauge
from monitor.kernel.source import CollectorJob

WINDOW_REQUESTS = gauge(
    "heroku_router_window_requests", "Router requests in the window", "app", "window"
)
WINDOW_5XX = gauge(
    "heroku_router_window_5xx_ratio",
    "Share of the window's router requests answered 5xx",
    "app",
    "window",
)
WINDOW_P95 = gauge(
    "heroku_router_window_service_p95_seconds",
    "95th percentile of router service time over the window (interpolated in its bucket)",
    "app",
    "window",
)
WINDOW_ROUTER_ERRORS = gauge(
    "heroku_router_window_errors", "Router error codes in the window", "app", "code", "window"
)
WINDOW_DYNO_ERRORS = gauge(
    "heroku_dyno_window_errors",
    "Dyno R-codes in the window",
    "app",
    "process",
    "code",
    "window",
)
WINDOW_CRASHES = gauge(
    "heroku_dyno_window_crashes", "Dyno crashes in the window", "app", "process", "window"
)
WINDOW_DROPPED = gauge(
    "heroku_logplex_window_dropped_messages",
    "Messages Logplex dropped (L10) in the window",
    "app",
    "window",
)
SINCE_LAST_BATCH = gauge(
    "heroku_drain_seconds_since_last_batch",
    "Seconds since the drain last accepted a batch for the app (since start when none)",
    "app",
)


class DrainWindowJob(CollectorJob):
    collector = "heroku_drain"

    def __init__(
        self,
        config: LogDrainConfig,
        state: DrainState,
        interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = config.name
        self.interval = interval
        self.timeout = 5.0
        self._config = config
        self._state = state
        self._window = format_duration(config.window).replace(" ", "")
        self._monotonic = monotonic
        self._clock = clock
        self._started = clock()

    async def collect(self) -> Sequence[Sample]:
        out: list[Sample] = []
        t, w = self.target, self._window
        for app, totals in sorted(self._state.window_totals(self._monotonic()).items()):
            out.append(WINDOW_REQUESTS(totals.requests, app, w, target=t))
            if totals.requests >= self._config.min_requests:
                ratio = totals.server_errors / totals.requests
                out.append(WINDOW_5XX(ratio, app, w, target=t))
                p95 = quantile(0.95, SERVICE_BOUNDS, totals.service)
                if p95 is not None:
                    out.append(WINDOW_P95(p95, app, w, target=t))
            for code, n in sorted(totals.router_codes.items()):
                out.append(WINDOW_ROUTER_ERRORS(n, app, code, w, target=t))
            for (process, code), n in sorted(totals.dyno_codes.items()):
                out.append(WINDOW_DYNO_ERRORS(n, app, process, code, w, target=t))
            for process, n in sorted(totals.crashes.items()):
                out.append(WINDOW_CRASHES(n, app, process, w, target=t))
            if totals.dropped:
                out.append(WINDOW_DROPPED(totals.dropped, app, w, target=t))
        now = self._clock()
        last = dict(self._state.last_frame)
        if self._config.default_app is not None:
            last.setdefault(self._config.default_app, self._started)
        for app, at in sorted(last.items()):
            out.append(SINCE_LAST_BATCH(max(0.0, now - at), app, target=t))
        return out

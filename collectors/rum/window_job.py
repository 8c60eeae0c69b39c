"""The beacons of the last ``window``, as samples in the snapshot store, where rules
see them (the cumulative histograms are rendered straight from the aggregator).

Exposition (``window`` is ``rum.window``; p75 and ratios only from ``min_reports`` reports
by ``min_clients`` distinct client addresses)::

    webvitals_window_reports{target="rum",route="/products/:id",metric="lcp",window="5m"} 212
    webvitals_window_clients{target="rum",route="/products/:id",metric="lcp",window="5m"} 87
    webvitals_window_p75_seconds{target="rum",route="/products/:id",metric="lcp",window="5m"} 2.9
    webvitals_window_cls_p75{target="rum",route="/products/:id",window="5m"} 0.04
    webvitals_window_good_ratio{target="rum",route="/products/:id",metric="lcp",window="5m"} 0.66
    webvitals_window_poor_ratio{target="rum",route="/products/:id",metric="lcp",window="5m"} 0.08
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from collectors.rum.config import RumConfig
from collectors.rum.recent import RecentHistograms
from monitor.kernel.durations import format_duration
from monitor.kernel.snapshot import Sample, gauge
from monitor.kernel.source import CollectorJob

LABELS = ("route", "metric", "window")
WINDOW_REPORTS = gauge("webvitals_window_reports", "Reports counted in the window", *LABELS)
WINDOW_CLIENTS = gauge(
    "webvitals_window_clients",
    "Distinct client addresses among the window's reports (counted up to 1000)",
    *LABELS,
)
WINDOW_P75 = gauge(
    "webvitals_window_p75_seconds",
    "75th percentile over the window (interpolated within its bucket; exact at thresholds)",
    *LABELS,
)
WINDOW_CLS_P75 = gauge(
    "webvitals_window_cls_p75", "75th percentile of CLS over the window", "route", "window"
)
WINDOW_GOOD = gauge(
    "webvitals_window_good_ratio", "Share of the window's reports rated good", *LABELS
)
WINDOW_POOR = gauge(
    "webvitals_window_poor_ratio", "Share of the window's reports rated poor", *LABELS
)


class RumWindowJob(CollectorJob):
    collector = "rum_window"

    def __init__(
        self,
        config: RumConfig,
        recent: RecentHistograms,
        interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = config.name
        self.interval = interval
        self.timeout = 5.0
        self._min_reports = config.min_reports
        self._min_clients = config.min_clients
        self._window = format_duration(config.window)
        self._recent = recent
        self._monotonic = monotonic

    async def collect(self) -> Sequence[Sample]:
        out: list[Sample] = []
        t, w = self.target, self._window
        for s in self._recent.summaries(self._monotonic()):
            out.append(WINDOW_REPORTS(s.reports, s.route, s.metric, w, target=t))
            out.append(WINDOW_CLIENTS(s.clients, s.route, s.metric, w, target=t))
            if s.reports < self._min_reports or s.clients < self._min_clients:
                continue
            if s.metric == "cls":
                out.append(WINDOW_CLS_P75(s.p75, s.route, w, target=t))
            else:
                out.append(WINDOW_P75(s.p75, s.route, s.metric, w, target=t))
            out.append(WINDOW_GOOD(s.good_ratio, s.route, s.metric, w, target=t))
            out.append(WINDOW_POOR(s.poor_ratio, s.route, s.metric, w, target=t))
        return out

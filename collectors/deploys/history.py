"""A coarse history of the signals a release is judged on, one point every ``step``.

Cumulative signals (router requests, 5xx, service-time buckets per route; H12 per app;
pg_stat_statements calls and seconds per query) are stored as running totals: a window
is the difference between the last point at or before its end and the last point at or
before its start. Gauges (dyno memory, real-user p75) are stored as readings; a window is
the list of readings inside it.

Memory: with the default 60 s step and a 30 m window a release needs ~70 points; each
holds one small tuple per route, query and gauge (200 routes, 100 queries: ~30 KB).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.histogram import SERVICE_BOUNDS
from monitor.kernel.snapshot import Sample

BUCKETS = len(SERVICE_BOUNDS) + 1
QUERY_CALLS = "pg_stat_statements_calls_total"
QUERY_SECONDS = "pg_stat_statements_exec_seconds_total"
VITALS_P75 = "webvitals_window_p75_seconds"
VITALS = {"lcp": "lcp_p75", "inp": "inp_p75"}
ALL_APPS = ""
"""The ``app`` of signals that carry none (queries, real-user vitals): every app's."""


@dataclass(frozen=True, slots=True)
class RouteCounts:
    requests: int
    errors: int
    """Requests answered 5xx (the app's own and router H-codes)."""
    service: tuple[int, ...]
    """Requests per service-time bucket (``SERVICE_BOUNDS`` and +Inf)."""


GaugeKey = tuple[str, str, str]
"""(signal, app or ``ALL_APPS``, subject): ``("memory", "shop", "web.1")``."""


@dataclass(frozen=True, slots=True)
class Point:
    wall: float
    routes: dict[tuple[str, str], RouteCounts]
    h12: dict[str, tuple[int, int]]
    """app -> (H12 count, requests)."""
    queries: dict[str, tuple[float, float]]
    """query -> (calls, seconds)."""
    gauges: dict[GaugeKey, float]


@dataclass(slots=True)
class Window:
    """The signals over one time span (deltas of totals, readings of gauges)."""

    start: float
    end: float
    routes: dict[tuple[str, str], RouteCounts] = field(default_factory=dict)
    h12: dict[str, tuple[int, int]] = field(default_factory=dict)
    queries: dict[str, tuple[float, float]] = field(default_factory=dict)
    gauges: dict[GaugeKey, list[float]] = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)
    """The history points from ``start`` to ``end``, for per-step views."""
    _pairs: dict[tuple[str, str], list[tuple[RouteCounts, RouteCounts]]] = field(
        default_factory=dict
    )

    def route_pairs(self, key: tuple[str, str]) -> list[tuple[RouteCounts, RouteCounts]]:
        """One route's totals at consecutive history points, (earlier, later): a step's
        requests are their difference. Within one process the drain's totals only grow
        (a restart empties the history too)."""
        cached = self._pairs.get(key)
        if cached is None:
            cached = []
            previous: RouteCounts | None = None
            for point in self.points:
                now = point.routes.get(key)
                if now is None:
                    continue
                if previous is not None and now.requests >= previous.requests:
                    cached.append((previous, now))
                previous = now
            self._pairs[key] = cached
        return cached


def drain_signals(
    state: DrainState,
) -> tuple[dict[tuple[str, str], RouteCounts], dict[str, tuple[int, int]], dict[GaugeKey, float]]:
    """Per (app, route) totals, per-app H12, and dyno memory, read from the drain."""
    acc: dict[tuple[str, str], tuple[int, int, list[int]]] = {}
    for (app, _method, status_class, route), series in list(state.router.items()):
        key = (app, route)
        found = acc.get(key)
        if found is None:
            found = acc[key] = (0, 0, [0] * BUCKETS)
        buckets = found[2]
        for i, n in enumerate(series.service.counts):
            buckets[i] += n
        errors = series.requests if status_class == "5xx" else 0
        acc[key] = (found[0] + series.requests, found[1] + errors, buckets)
    routes = {k: RouteCounts(r, e, tuple(b)) for k, (r, e, b) in acc.items()}
    per_app: dict[str, int] = {}
    for (app, _), counts in routes.items():
        per_app[app] = per_app.get(app, 0) + counts.requests
    h12 = {
        app: (int(state.router_errors.get((app, "H12"), 0)), requests)
        for app, requests in per_app.items()
    }
    memory: dict[GaugeKey, float] = {}
    for (app, process), gauges in list(state.dyno_gauges.items()):
        value = gauges.values.get(("memory", "total"))
        if value is not None:
            memory[("memory", app, process)] = value
    return routes, h12, memory


def store_signals(
    samples: Iterable[Sample],
) -> tuple[dict[str, tuple[float, float]], dict[GaugeKey, float]]:
    """pg_stat_statements totals per query, real-user p75 per route, from the store."""
    calls: dict[str, float] = {}
    seconds: dict[str, float] = {}
    gauges: dict[GaugeKey, float] = {}
    for sample in samples:
        name = sample.spec.name
        if name in (QUERY_CALLS, QUERY_SECONDS):
            labels = sample.labels
            key = f"{labels.get('target', '')}/{labels.get('datname', '')}/{labels['queryid']}"
            (calls if name == QUERY_CALLS else seconds)[key] = sample.value
        elif name == VITALS_P75:
            labels = sample.labels
            signal = VITALS.get(labels.get("metric", "").lower())
            if signal is not None:
                gauges[(signal, ALL_APPS, labels.get("route", ""))] = sample.value
    queries = {k: (calls[k], seconds[k]) for k in calls.keys() & seconds.keys()}
    return queries, gauges


class History:
    def __init__(self, step: float, horizon: float) -> None:
        self.step = step
        self.horizon = horizon
        self.points: deque[Point] = deque()

    @property
    def first(self) -> float | None:
        return self.points[0].wall if self.points else None

    def due(self, wall: float) -> bool:
        return not self.points or wall - self.points[-1].wall >= self.step * 0.999

    def add(self, point: Point) -> None:
        if self.points and point.wall <= self.points[-1].wall:
            return
        self.points.append(point)
        while len(self.points) > 2 and self.points[1].wall < point.wall - self.horizon:
            self.points.popleft()

    def _at_or_before(self, wall: float) -> Point | None:
        walls = [p.wall for p in self.points]
        i = bisect.bisect_right(walls, wall)
        return self.points[i - 1] if i else None

    def covers(self, start: float) -> bool:
        """Whether the history reaches back to ``start`` (within one step)."""
        return bool(self.points) and self.points[0].wall <= start + self.step

    def window(self, start: float, end: float) -> Window | None:
        """The signals between ``start`` and ``end``; None without two points in it."""
        first = self._at_or_before(start)
        if first is None and self.points and self.points[0].wall <= start + self.step:
            first = self.points[0]
        last = self._at_or_before(end)
        if first is None or last is None or last.wall <= first.wall:
            return None
        out = Window(first.wall, last.wall)
        for key, now in last.routes.items():
            then = first.routes.get(key)
            if then is None:
                out.routes[key] = now  # the route appeared inside the window
                continue
            delta = [a - b for a, b in zip(now.service, then.service, strict=True)]
            requests, errors = now.requests - then.requests, now.errors - then.errors
            if requests < 0 or errors < 0 or min(delta) < 0:
                continue  # the drain's totals restarted
            out.routes[key] = RouteCounts(requests, errors, tuple(delta))
        for app, (h12, requests) in last.h12.items():
            h12_0, requests_0 = first.h12.get(app, (0, 0))
            if h12 >= h12_0 and requests >= requests_0:
                out.h12[app] = (h12 - h12_0, requests - requests_0)
        for query, (calls, seconds) in last.queries.items():
            then_q = first.queries.get(query)
            if then_q is None:
                continue  # its totals before the window are unknown
            if calls >= then_q[0] and seconds >= then_q[1]:
                out.queries[query] = (calls - then_q[0], seconds - then_q[1])
        for point in self.points:
            if first.wall <= point.wall <= last.wall:
                out.points.append(point)
            if first.wall < point.wall <= last.wall:
                for gauge_key, value in point.gauges.items():
                    out.gauges.setdefault(gauge_key, []).append(value)
        return out

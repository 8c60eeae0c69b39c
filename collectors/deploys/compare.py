"""The comparison of one release: a window after it against a window before it.

Every signal of every route, query or dyno yields a :class:`Finding`. It is *judged*
only with enough data on both sides, and *regressed* only when three things hold at
once: the effect is at least the configured ratio, at least the configured absolute
increase, and a one-sided test puts the chance of a shift that large under ``alpha``.
So a quiet route (few requests), a noisy hour (large spread, small effect) or a tiny
absolute change (2 ms -> 4 ms) never pages. Router signals must moreover have moved step
by step (each minute's p50, p95 or 5xx ratio, after against before): requests are not
independent (bursts, a slow minute), and one bad minute is not a release regression.

Signals: ``p50`` and ``p95`` (router service time per route), ``5xx`` (ratio per route),
``h12`` (rate per app), ``query`` (pg_stat_statements mean time), ``lcp_p75`` and
``inp_p75`` (real-user p75 per route), ``memory`` (dyno memory per process).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from collectors.deploys.config import DeploysConfig
from collectors.deploys.history import ALL_APPS, RouteCounts, Window
from collectors.deploys.stats import (
    histogram_shift,
    proportion_increase,
    samples_shift,
    tail_bucket,
    tail_shift,
)
from collectors.heroku_logs.histogram import SERVICE_BOUNDS, quantile

SUBJECT = {
    "p50": "route",
    "p95": "route",
    "5xx": "route",
    "h12": "",
    "query": "query",
    "lcp_p75": "route",
    "inp_p75": "route",
    "memory": "process",
}
UNIT = {
    "p50": "s",
    "p95": "s",
    "5xx": "ratio",
    "h12": "ratio",
    "query": "s",
    "lcp_p75": "s",
    "inp_p75": "s",
    "memory": "bytes",
}


@dataclass(frozen=True, slots=True)
class Finding:
    signal: str
    subject: str
    """The route, query or process (empty for per-app signals)."""
    before: float | None
    after: float | None
    n_before: int
    n_after: int
    p_value: float | None
    """The test's one-sided p-value; None when the effect was too small to test, and
    for query mean time (effect and counts only)."""
    judged: bool
    regressed: bool

    @property
    def subject_label(self) -> str:
        return SUBJECT[self.signal]

    @property
    def ratio(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        if self.before <= 0:
            return float("inf") if self.after > 0 else 1.0
        return self.after / self.before

    def change(self) -> str:
        """``p95 /checkout 180 ms -> 420 ms``."""
        where = f" {self.subject}" if self.subject else ""
        before, after = show(self.before, self.signal), show(self.after, self.signal)
        return f"{self.signal}{where} {before} -> {after}"


def show(value: float | None, signal: str) -> str:
    if value is None:
        return "-"
    unit = UNIT[signal]
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
    if unit == "ratio":
        return f"{value * 100:.2g}%" if value < 0.01 else f"{value * 100:.1f}%"
    return f"{value / (1024 * 1024):.0f} MiB"


StepValue = Callable[[RouteCounts, RouteCounts], float | None]
"""A step's value from the route's totals at its start and end."""


def _steps_moved(
    before: Window, after: Window, key: tuple[str, str], value: StepValue, c: DeploysConfig
) -> bool:
    """Whether the per-step values moved up too (Mann-Whitney U over the steps with
    ``min_step_requests``), not just the pooled requests."""

    def values(window: Window) -> list[float]:
        out = []
        for start, end in window.route_pairs(key):
            if end.requests - start.requests >= c.min_step_requests:
                v = value(start, end)
                if v is not None:
                    out.append(v)
        return out

    v0, v1 = values(before), values(after)
    if len(v0) < c.min_points or len(v1) < c.min_points:
        return False
    return samples_shift(v0, v1) < c.step_alpha


def _share_above(bucket: int) -> StepValue:
    """A step's share of requests slower than ``bucket`` (the bucket of the earlier
    quantile): cheaper than the step's own quantile, and what moves when it moves."""

    def value(start: RouteCounts, end: RouteCounts) -> float | None:
        timed = sum(end.service) - sum(start.service)
        if timed <= 0:
            return None
        return (sum(end.service[bucket + 1 :]) - sum(start.service[bucket + 1 :])) / timed

    return value


def _step_error_ratio(start: RouteCounts, end: RouteCounts) -> float | None:
    requests = end.requests - start.requests
    return (end.errors - start.errors) / requests if requests > 0 else None


def _latency(
    route: str,
    before: RouteCounts,
    after: RouteCounts,
    c: DeploysConfig,
    steps: Callable[[StepValue], bool],
) -> list[Finding]:
    n0, n1 = sum(before.service), sum(after.service)
    judged = n0 >= c.min_requests and n1 >= c.min_requests
    out = []
    for signal, q in (("p50", 0.5), ("p95", 0.95)):
        q0 = quantile(q, SERVICE_BOUNDS, list(before.service))
        q1 = quantile(q, SERVICE_BOUNDS, list(after.service))
        p = None
        regressed = False
        big = (
            judged
            and q0 is not None
            and q1 is not None
            and q1 >= q0 * c.latency_ratio
            and q1 - q0 >= c.latency_increase
        )
        if big:  # the test only for an effect worth paging for: most routes skip it
            if signal == "p50":
                p = histogram_shift(before.service, after.service)
            else:
                p = tail_shift(before.service, after.service, q)
            regressed = p < c.alpha and steps(_share_above(tail_bucket(before.service, q)))
        out.append(Finding(signal, route, q0, q1, n0, n1, p, judged, regressed))
    return out


def _rate(
    signal: str,
    subject: str,
    hits0: int,
    n0: int,
    hits1: int,
    n1: int,
    c: DeploysConfig,
    steps: Callable[[], bool] = lambda: True,
) -> Finding:
    r0 = hits0 / n0 if n0 else None
    r1 = hits1 / n1 if n1 else None
    judged = n0 >= c.min_requests and n1 >= c.min_requests
    p = None
    regressed = False
    if (
        judged
        and r0 is not None
        and r1 is not None
        and r1 - r0 >= c.error_ratio_increase
        and r1 >= r0 * c.error_ratio_factor
    ):
        p = proportion_increase(hits0, n0, hits1, n1)
        regressed = p < c.alpha and steps()
    return Finding(signal, subject, r0, r1, n0, n1, p, judged, regressed)


def _query(
    query: str, before: tuple[float, float], after: tuple[float, float], c: DeploysConfig
) -> Finding:
    calls0, calls1 = int(before[0]), int(after[0])
    m0 = before[1] / before[0] if before[0] > 0 else None
    m1 = after[1] / after[0] if after[0] > 0 else None
    judged = calls0 >= c.min_calls and calls1 >= c.min_calls and m0 is not None and m1 is not None
    regressed = bool(
        judged
        and m0 is not None
        and m1 is not None
        and m1 >= m0 * c.query_ratio
        and m1 - m0 >= c.query_increase
    )
    return Finding("query", query, m0, m1, calls0, calls1, None, judged, regressed)


def _gauge(
    signal: str, subject: str, before: list[float], after: list[float], c: DeploysConfig
) -> Finding:
    m0 = statistics.median(before) if before else None
    m1 = statistics.median(after) if after else None
    judged = len(before) >= c.min_points and len(after) >= c.min_points
    p = None
    regressed = False
    if judged and m0 is not None and m1 is not None:
        ratio = c.memory_ratio if signal == "memory" else c.vitals_ratio
        if m1 >= m0 * ratio and m1 > m0:
            p = samples_shift(before, after)
            regressed = p < c.alpha
    return Finding(signal, subject, m0, m1, len(before), len(after), p, judged, regressed)


def _route(
    app: str,
    route: str,
    b: RouteCounts,
    a: RouteCounts,
    before: Window,
    after: Window,
    c: DeploysConfig,
) -> list[Finding]:
    def moved(value: StepValue) -> bool:
        return _steps_moved(before, after, (app, route), value, c)

    def errors_moved() -> bool:
        return moved(_step_error_ratio)

    five = _rate("5xx", route, b.errors, b.requests, a.errors, a.requests, c, errors_moved)
    return [*_latency(route, b, a, c, moved), five]


def compare(app: str, before: Window, after: Window, c: DeploysConfig) -> list[Finding]:
    """Every finding of ``app``: per route, then per app, query and gauge."""
    out: list[Finding] = []
    routes = {r for (a, r) in before.routes if a == app} | {
        r for (a, r) in after.routes if a == app
    }
    empty = RouteCounts(0, 0, (0,) * (len(SERVICE_BOUNDS) + 1))

    def busy(route: str) -> int:
        return (
            before.routes.get((app, route), empty).requests
            + after.routes.get((app, route), empty).requests
        )

    for route in sorted(sorted(routes), key=busy, reverse=True)[: c.max_routes]:
        b = before.routes.get((app, route), empty)
        a = after.routes.get((app, route), empty)
        out.extend(_route(app, route, b, a, before, after, c))
    h0, n0 = before.h12.get(app, (0, 0))
    h1, n1 = after.h12.get(app, (0, 0))
    if n0 or n1:
        out.append(_rate("h12", "", h0, n0, h1, n1, c))
    for query in sorted(before.queries.keys() & after.queries.keys()):
        out.append(_query(query, before.queries[query], after.queries[query], c))
    for key in sorted(before.gauges.keys() | after.gauges.keys()):
        signal, owner, subject = key
        if owner not in (app, ALL_APPS):
            continue
        out.append(
            _gauge(signal, subject, before.gauges.get(key, []), after.gauges.get(key, []), c)
        )
    return out


VERDICTS = ("pass", "regressed", "insufficient")


def verdict(findings: list[Finding]) -> str:
    if any(f.regressed for f in findings):
        return "regressed"
    if any(f.judged for f in findings):
        return "pass"
    return "insufficient"

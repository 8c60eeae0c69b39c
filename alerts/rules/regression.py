"""Query regression: a query's mean execution time now against its own past.

From the cumulative counters ``pg_stat_statements_calls_total`` and
``pg_stat_statements_exec_seconds_total`` of one (target, datname, queryid), the rule
keeps a history of points covering ``window + baseline``: one every ``step`` over the
last ``window`` (and two steps of slack), one every ``coarse_step`` before that. A mean
over an interval of cumulative counters needs only the points at its ends, and the
baseline's start can be an hour off on a day without changing its mean that matters:
with the defaults that is ~33 points per query instead of ~580, in memory and in the
state database, which matters for a fleet exporting thousands of statements.

* recent mean = Δseconds / Δcalls between the point ``window`` ago and now;
* baseline mean = the same over the ``baseline`` before that, to within one
  ``coarse_step`` (or over the history there is, once it spans at least one ``window``);
* the condition holds when both windows saw at least ``min_calls`` calls, the recent
  mean exceeds ``factor`` times the baseline, and by at least ``min_increase`` seconds.
  Once firing, it resolves only when the recent mean falls to ``clear_factor`` times the
  baseline or below (hysteresis: ``min_increase`` is a condition to start firing, not
  to keep firing, so a mean hovering between the clear and firing levels stays firing).

A counter that goes backwards (``pg_stat_statements_reset()``, eviction, failover)
restarts the query's history.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Point:
    monotonic: float
    wall: float
    calls: float
    seconds: float


History = tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class RegressionSettings:
    calls_metric: str = "pg_stat_statements_calls_total"
    time_metric: str = "pg_stat_statements_exec_seconds_total"
    window: float = 900.0
    baseline: float = 86400.0
    factor: float = 2.0
    clear_factor: float = 1.5
    min_calls: int = 50
    min_increase: float = 0.005

    @property
    def step(self) -> float:
        """Spacing of the stored points: a sixth of the window, at least 10 s."""
        return max(self.window / 6, 10.0)

    @property
    def coarse_step(self) -> float:
        """Spacing of the points older than the window: a 24th of the baseline, at least
        one ``step``."""
        return max(self.baseline / 24, self.step)

    @property
    def horizon(self) -> float:
        return self.window + self.baseline + self.step


@dataclass(frozen=True, slots=True)
class Verdict:
    active: bool
    recent_mean: float | None
    baseline_mean: float | None
    threshold: float | None


class Recorded(NamedTuple):
    history: History
    appended: bool
    was_reset: bool
    dropped: tuple[Point, ...]
    """Points the history no longer holds: older than the window and not the first of
    their coarse step, or older than the horizon (the state database drops them too)."""


def record(points: History, point: Point, s: RegressionSettings) -> Recorded:
    """Add ``point`` if a step has passed; thin and prune the older points."""
    was_reset = False
    if points and (point.calls < points[-1].calls or point.seconds < points[-1].seconds):
        points, was_reset = (), True
    if points and point.monotonic - points[-1].monotonic < s.step:
        return Recorded(points, False, was_reset, ())
    points = (*points, point)
    # before the window (and two steps of slack), the first point of each coarse step
    fine = bisect.bisect_left(points, point.monotonic - s.window - 2 * s.step, key=_monotonic)
    kept: list[Point] = []
    dropped: list[Point] = []
    coarse = s.coarse_step
    for old in points[:fine]:
        if kept and old.wall // coarse == kept[-1].wall // coarse:
            dropped.append(old)
        else:
            kept.append(old)
    if dropped:
        points = (*kept, *points[fine:])
    # older than the horizon: gone, but for the last one before it (a baseline's start)
    cutoff = bisect.bisect_right(points, point.monotonic - s.horizon, key=_monotonic)
    if cutoff > 1:
        dropped.extend(points[: cutoff - 1])
        points = points[cutoff - 1 :]
    return Recorded(points, True, was_reset, tuple(dropped))


def _monotonic(point: Point) -> float:
    return point.monotonic


def _at_or_before(points: History, moment: float) -> Point | None:
    index = bisect.bisect_right(points, moment, key=_monotonic)
    return points[index - 1] if index else None


def _mean(start: Point, end: Point, min_calls: int) -> float | None:
    calls = end.calls - start.calls
    if calls < min_calls or calls <= 0:
        return None
    return (end.seconds - start.seconds) / calls


def assess(points: History, now: Point, s: RegressionSettings, *, firing: bool) -> Verdict | None:
    """The verdict for one query, or None while the history is too short to judge."""
    start = _at_or_before(points, now.monotonic - s.window)
    if start is None:
        return None
    recent = _mean(start, now, s.min_calls)
    base_start = _at_or_before(points, start.monotonic - s.baseline)
    if base_start is None and points and start.monotonic - points[0].monotonic >= s.window:
        base_start = points[0]
    baseline = _mean(base_start, start, s.min_calls) if base_start is not None else None
    if recent is None or baseline is None:
        return Verdict(False, recent, baseline, None)
    threshold = baseline * s.factor
    if firing:
        active = recent > baseline * s.clear_factor
    else:
        active = recent > threshold and recent - baseline >= s.min_increase
    return Verdict(active, recent, baseline, threshold)

"""Query regression hysteresis: once firing, it clears only below the clear level."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from alerts.rules.regression import History, Point, Recorded, RegressionSettings, assess, record

S = RegressionSettings(window=60.0, baseline=3600.0, min_calls=20)


def replay(means: list[float], *, step: float = 10.0, calls: float = 100.0) -> list[bool]:
    """Feed one point per ``step`` with the given mean; the verdicts, in order (firing
    state kept as the evaluator keeps it)."""
    points: History = ()
    total_calls = total_seconds = 0.0
    firing = False
    out = []
    for i, mean in enumerate(means):
        total_calls += calls
        total_seconds += calls * mean
        point = Point(i * step, 1_800_000_000.0 + i * step, total_calls, total_seconds)
        points = record(points, point, S).history
        verdict = assess(points, point, S, firing=firing)
        if verdict is not None:
            firing = verdict.active
        out.append(firing)
    return out


def transitions(states: list[bool]) -> tuple[int, int]:
    fired = sum(1 for a, b in itertools.pairwise(states) if b and not a)
    cleared = sum(1 for a, b in itertools.pairwise(states) if a and not b)
    return fired, cleared


def test_a_mean_hovering_between_the_clear_and_firing_levels_stays_firing() -> None:
    """3 ms -> 30 ms -> hovering at 6.5-7 ms (the baseline, which absorbs the regression,
    is then about 3.9 ms: above 1.5x and under 2x, an increase under ``min_increase``)
    -> 3 ms: one trigger and one resolve, and the resolve only once below 1.5x."""
    baseline = [0.003] * 360  # an hour at 3 ms
    regression = [0.030] * 12
    hover = [0.0065, 0.0070] * 30  # ten minutes between 1.5x and 2x of the baseline
    recovered = [0.003] * 20
    states = replay(baseline + regression + hover + recovered)
    assert transitions(states) == (1, 1)
    hover_start = len(baseline) + len(regression)
    assert all(states[hover_start : hover_start + len(hover)])
    assert states[-1] is False


def test_the_hover_does_not_start_firing() -> None:
    """Without the regression first, the same hover never fires (2x and min_increase)."""
    states = replay([0.003] * 360 + [0.0065, 0.0070] * 30)
    assert transitions(states) == (0, 0)


def test_firing_clears_at_the_clear_level() -> None:
    points: History = (
        Point(0.0, 0.0, 0.0, 0.0),
        Point(3600.0, 3600.0, 1000.0, 3.0),  # baseline 3 ms
    )
    just_above = Point(3660.0, 3660.0, 1100.0, 3.0 + 100 * 0.00451)
    at_level = Point(3660.0, 3660.0, 1100.0, 3.0 + 100 * 0.00449)
    assert assess((*points, just_above), just_above, S, firing=True).active  # type: ignore[union-attr]
    assert not assess((*points, at_level), at_level, S, firing=True).active  # type: ignore[union-attr]
    assert not assess((*points, just_above), just_above, S, firing=False).active  # type: ignore[union-attr]


def day_and_a_half(mean_at: Any, s: RegressionSettings) -> tuple[list[Point], Recorded]:
    """Points every step for a day and a half with the mean ``mean_at(i)``; every point
    fed, and the last record."""
    fed: list[Point] = []
    points: History = ()
    calls = seconds = 0.0
    last: Recorded | None = None
    thinned: list[Point] = []
    for i in range(int(1.5 * 86400 / s.step)):
        calls += 100
        seconds += 100 * mean_at(i)
        point = Point(i * s.step, 1_800_000_000.0 + i * s.step, calls, seconds)
        fed.append(point)
        last = record(points, point, s)
        points = last.history
        thinned.extend(last.dropped)
    assert last is not None
    return fed, Recorded(points, last.appended, last.was_reset, tuple(thinned))


def test_history_is_a_point_a_step_in_the_window_and_one_an_hour_before() -> None:
    s = RegressionSettings()  # a 15 min window against a day's baseline
    fed, recorded = day_and_a_half(lambda i: 0.01, s)
    points, now = recorded.history, fed[-1]
    assert len(points) <= 36  # ~580 at one point a step
    recent = [p for p in points if p.monotonic >= now.monotonic - s.window - 2 * s.step]
    assert [p.monotonic for p in recent] == [p.monotonic for p in fed[-len(recent) :]]
    assert len(recent) >= s.window / s.step + 1
    older = [p for p in points if p not in recent]
    hours = [p.wall // 3600 for p in older]
    assert len(set(hours)) == len(hours)  # one an hour
    assert older[0].monotonic <= now.monotonic - s.horizon  # a baseline's start is kept
    # every point gone is listed as dropped (the state database deletes them), once
    dropped = set(recorded.dropped)
    assert len(recorded.dropped) == len(dropped) and dropped == set(fed) - set(points)


def test_thinned_history_judges_as_the_full_history_does() -> None:
    """The baseline's start an hour off changes a day's mean by little: the verdict and
    means on the thinned history match those on every point (the mean varying by hour)."""
    s = RegressionSettings()
    steps_a_day = 86400 / s.step

    def mean_at(i: int) -> float:
        slow = i >= len_run - 12  # the last 30 min: three times slower
        daily = 0.01 * (1.5 + math.sin(2 * math.pi * i / steps_a_day))
        return daily * (3 if slow else 1)

    len_run = int(1.5 * 86400 / s.step)
    fed, recorded = day_and_a_half(mean_at, s)
    now = fed[-1]
    full = tuple(p for p in fed if p.monotonic >= now.monotonic - s.horizon - s.step)
    thinned = assess(recorded.history, now, s, firing=False)
    every = assess(full, now, s, firing=False)
    assert thinned is not None and every is not None
    assert thinned.active and every.active
    assert thinned.recent_mean == every.recent_mean
    assert thinned.baseline_mean == pytest.approx(every.baseline_mean, rel=0.05)

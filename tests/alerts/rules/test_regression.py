"""Query regression hysteresis: once firing, it clears only below the clear level."""

from __future__ import annotations

import itertools

from alerts.rules.regression import History, Point, RegressionSettings, assess, record

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
        points, _, _ = record(points, point, S)
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

"""The one-sided tests of the release comparison, on known cases and degenerate input."""

from __future__ import annotations

import random

import pytest

from collectors.deploys.stats import (
    histogram_shift,
    proportion_increase,
    samples_shift,
    tail_bucket,
    tail_shift,
)


def test_histogram_shift() -> None:
    same = [0, 10, 50, 30, 10, 0]
    assert 0.3 < histogram_shift(same, same) < 0.7
    assert histogram_shift(same, [0, 0, 10, 50, 30, 10]) < 1e-9
    assert histogram_shift([0, 0, 10, 50, 30, 10], same) > 0.99  # faster is no regression
    assert histogram_shift([], []) == 1.0
    assert histogram_shift([0, 0], [0, 5]) == 1.0
    assert histogram_shift([0, 9, 0], [0, 9, 0]) == 1.0  # all ties: nothing to test


def test_histogram_shift_agrees_with_samples_shift_on_distinct_values() -> None:
    rng = random.Random(3)
    before = [rng.gauss(0, 1) for _ in range(200)]
    after = [rng.gauss(0.3, 1) for _ in range(200)]
    edges = sorted(before + after)
    index = {v: i for i, v in enumerate(edges)}
    b = [0] * len(edges)
    a = [0] * len(edges)
    for v in before:
        b[index[v]] += 1
    for v in after:
        a[index[v]] += 1
    assert histogram_shift(b, a) == pytest.approx(samples_shift(before, after), rel=1e-6)


def test_tail_and_proportions() -> None:
    before = [0, 50, 40, 5, 5, 0]
    assert tail_bucket(before, 0.95) == 3
    assert tail_shift(before, before, 0.95) > 0.4
    assert tail_shift(before, [0, 50, 30, 5, 5, 10], 0.95) < 0.01
    assert proportion_increase(0, 100, 0, 100) == 1.0
    assert proportion_increase(1, 1000, 40, 1000) < 1e-6
    assert proportion_increase(5, 0, 5, 10) == 1.0
    assert samples_shift([1.0] * 10, [1.0] * 10) == 1.0
    assert samples_shift([], [1.0]) == 1.0

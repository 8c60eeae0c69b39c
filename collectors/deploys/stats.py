"""One-sided tests for "after is worse than before", each in O(buckets) or O(n log n).

* :func:`histogram_shift`: Mann-Whitney U on two bucketed distributions (ties within a
  bucket handled by the usual tie correction): is a request after the release slower
  than one before, more often than chance allows?
* :func:`tail_shift`: two-proportion z-test on the share of requests above the bucket
  that held the earlier p95 (the tail can move while the median does not);
* :func:`proportion_increase`: two-proportion z-test (5xx ratio, H12 rate);
* :func:`samples_shift`: Mann-Whitney U on two small lists of values (gauges sampled
  over the windows: dyno memory, real-user p75).

Each returns a one-sided p-value (1.0 when there is nothing to test). A p-value alone
never pages: :mod:`.compare` also requires minimum counts and a minimum effect size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def histogram_shift(before: Sequence[int], after: Sequence[int]) -> float:
    """One-sided p-value that ``after`` is stochastically larger than ``before`` (same
    buckets), by Mann-Whitney U with tie correction and continuity correction."""
    n0, n1 = sum(before), sum(after)
    total = n0 + n1
    if n0 == 0 or n1 == 0 or total < 3:
        return 1.0
    u = 0.0
    below = 0
    ties = 0.0
    for a, b in zip(before, after, strict=True):
        u += b * (below + 0.5 * a)
        below += a
        t = a + b
        ties += t * t * t - t
    mean = n0 * n1 / 2.0
    variance = n0 * n1 / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    if variance <= 0:
        return 1.0
    return normal_sf((u - mean - 0.5) / math.sqrt(variance))


def proportion_increase(hits0: int, n0: int, hits1: int, n1: int) -> float:
    """One-sided p-value that the rate ``hits1/n1`` is above ``hits0/n0``."""
    if n0 <= 0 or n1 <= 0:
        return 1.0
    pooled = (hits0 + hits1) / (n0 + n1)
    if pooled <= 0.0 or pooled >= 1.0:
        return 1.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    return normal_sf((hits1 / n1 - hits0 / n0) / se)


def tail_bucket(counts: Sequence[int], q: float) -> int:
    """Index of the bucket holding the ``q`` quantile of ``counts``."""
    rank = q * sum(counts)
    running = 0
    for i, n in enumerate(counts):
        running += n
        if running >= rank and n > 0:
            return i
    return len(counts) - 1


def tail_shift(before: Sequence[int], after: Sequence[int], q: float) -> float:
    """One-sided p-value that more of ``after`` lies above the bucket of ``before``'s
    ``q`` quantile than of ``before``."""
    n0, n1 = sum(before), sum(after)
    if n0 == 0 or n1 == 0:
        return 1.0
    k = tail_bucket(before, q)
    return proportion_increase(sum(before[k + 1 :]), n0, sum(after[k + 1 :]), n1)


def samples_shift(before: Sequence[float], after: Sequence[float]) -> float:
    """One-sided p-value that ``after`` values are larger (Mann-Whitney U, normal
    approximation with tie and continuity correction)."""
    n0, n1 = len(before), len(after)
    if n0 == 0 or n1 == 0:
        return 1.0
    merged = sorted([(v, 0) for v in before] + [(v, 1) for v in after])
    rank_sum_after = 0.0
    ties = 0.0
    total = len(merged)
    i = 0
    while i < total:
        value = merged[i][0]
        j = i
        ones = 0
        while j < total and merged[j][0] == value:
            ones += merged[j][1]
            j += 1
        t = j - i
        rank_sum_after += (i + j + 1) / 2.0 * ones  # mean rank of positions i+1 .. j
        ties += t * t * t - t
        i = j
    u = rank_sum_after - n1 * (n1 + 1) / 2.0
    mean = n0 * n1 / 2.0
    variance = n0 * n1 / 12.0 * ((total + 1) - ties / (total * (total - 1) or 1))
    if variance <= 0:
        return 1.0
    return normal_sf((u - mean - 0.5) / math.sqrt(variance))

"""A fixed-bucket histogram kept as plain per-bucket counts (cumulated when rendered)."""

from __future__ import annotations

from bisect import bisect_left

SERVICE_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Router ``service`` in seconds; 0.5 is a bound so ``le="0.5"`` counts exactly the
requests inside the 500 ms target, and H12 (30 s) lands in the last finite bucket."""
CONNECT_BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
GENERIC_BOUNDS = tuple(m * 10.0**e for e in range(-3, 7) for m in (1.0, 2.5, 5.0))
"""l2met ``measure#`` values in their base unit: 0.001 to 5e6 in 1-2.5-5 steps."""


class Histogram:
    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs ending with ``+Inf``, for the exposition."""
        out = []
        running = 0
        for bound, n in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, float(running)))
        return out


def quantile(q: float, bounds: tuple[float, ...], counts: list[int]) -> float | None:
    """The ``q`` quantile of per-bucket ``counts``, interpolated linearly inside its bucket
    as Prometheus' ``histogram_quantile`` does (the +Inf bucket answers the last bound)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    running = 0
    for i, n in enumerate(counts):
        if running + n >= rank and n > 0:
            if i == len(bounds):
                return bounds[-1]
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * (rank - running) / n
        running += n
    return bounds[-1]

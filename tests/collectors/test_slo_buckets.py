"""BucketRing's running-total counts equal a walk over every bucket of the window."""

from __future__ import annotations

import random

from collectors.http_probe.slo import WINDOWS, BucketRing


def naive(events: list[tuple[float, bool]], now: float, span: float, width: float, n: int):  # type: ignore[no-untyped-def]
    last = int(now // width)
    buckets = min(n, max(1, round(span / width)))
    first = last - buckets + 1
    inside = [ok for t, ok in events if first <= int(t // width) <= last]
    return len(inside), sum(1 for ok in inside if not ok)


def test_counts_match_a_full_walk_with_gaps_and_wraparound() -> None:
    rng = random.Random(7)
    width = 30.0
    ring = BucketRing(max(WINDOWS), width)
    n = ring._n
    events: list[tuple[float, bool]] = []
    t = 0.0
    for step in range(40_000):
        # mostly every 15 s, sometimes an outage of hours (buckets left empty)
        t += 15.0 if rng.random() > 0.001 else rng.uniform(600, 30_000)
        ok = rng.random() > 0.05
        ring.add(t, ok)
        events.append((t, ok))
        if step % 997 == 0:
            now = t + rng.uniform(0, 120)
            for span in WINDOWS:
                assert ring.counts(now, span) == naive(events, now, span, width, n), (step, span)
    assert t > 4 * max(WINDOWS)  # the ring wrapped around several times


def test_empty_and_stale_windows_count_nothing() -> None:
    ring = BucketRing(3600.0, 60.0)
    assert ring.counts(1000.0, 300.0) == (0, 0)
    ring.add(100.0, False)
    assert ring.counts(130.0, 300.0) == (1, 1)
    assert ring.counts(100_000.0, 300.0) == (0, 0)

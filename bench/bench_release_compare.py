"""Release comparison: what judging one release costs, and how soon a regression pages.

1. ``compare``: a history of 200 routes (service-time histograms, 5xx), 100
   pg_stat_statements queries and 24 gauges (dyno memory, real-user p75) at the default
   60 s step over ``settle + 2 * window``; one release judged as the daemon does
   (two window extractions, then every test). Printed side by side: the window
   extraction, the comparison, the total per release, and the total against the
   100 ms target (ratio under 1.0 is within target).
2. ``detection``: router drains replayed through the real drain and deploy job with the
   default windows (settle 5 m, window 30 m, first look 10 m); /checkout's service time
   doubles at the release. Printed: minutes from the first regressed request to the
   ``ReleaseRegression`` series, at a busy and at a quiet request rate.

Run with ``uv run python bench/bench_release_compare.py [--full]`` (``--full``: more
rounds and three traffic rates).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from collectors.deploys.compare import compare  # noqa: E402
from collectors.deploys.config import DeploysConfig  # noqa: E402
from collectors.deploys.history import BUCKETS, History, Point, RouteCounts  # noqa: E402
from collectors.heroku_logs.releases import ReleaseEvent  # noqa: E402

APP = "shop"
T0 = 1_796_000_000.0


def synthetic_history(
    config: DeploysConfig, routes: int, queries: int, shift: int = 0
) -> tuple[History, float]:
    """Points every step over settle + 2 windows; returns the history and release time.
    ``shift`` moves every request after the release that many buckets up (and queries
    and gauges up too), so that every test runs."""
    rng = random.Random(1)
    history = History(config.step, 2 * config.window + config.settle + 4 * config.step)
    steps = int((2 * config.window + config.settle) / config.step) + 2
    totals = {f"/r{i}": [0, 0, [0] * BUCKETS] for i in range(routes)}
    qtotals = {f"primary/shop/{i}": [0.0, 0.0] for i in range(queries)}
    released = T0 + config.window + config.step
    for s in range(steps):
        up = shift if T0 + s * config.step > released else 0
        route_counts = {}
        for name, acc in totals.items():
            n = rng.randint(20, 60)
            acc[0] += n
            acc[1] += rng.randint(0, 1)
            buckets = acc[2]
            for _ in range(6):
                buckets[min(rng.randint(2, 7) + up, BUCKETS - 1)] += n // 6
            route_counts[(APP, name)] = RouteCounts(acc[0], acc[1], tuple(buckets))
        for acc_q in qtotals.values():
            acc_q[0] += 100
            acc_q[1] += 100 * rng.uniform(0.001, 0.003) * (10 if up else 1)
        grow = 2.0 if up else 1.0
        gauges = {("memory", APP, f"web.{i}"): rng.uniform(3e8, 3.2e8) * grow for i in range(4)}
        gauges.update({("lcp_p75", "", f"/r{i}"): rng.uniform(1.8, 2.2) * grow for i in range(20)})
        history.add(
            Point(
                T0 + s * config.step,
                route_counts,
                {APP: (s, route_counts[(APP, "/r0")].requests * routes)},
                {k: (v[0], v[1]) for k, v in qtotals.items()},
                gauges,
            )
        )
    return history, released


def bench_compare(rounds: int) -> None:
    for shift, what in (
        (0, "nothing moved (effects too small to test)"),
        (2, "everything regressed (every test runs)"),
    ):
        compare_once(rounds, shift, what)


def compare_once(rounds: int, shift: int, what: str) -> None:
    config = DeploysConfig()
    history, released = synthetic_history(config, 200, 100, shift)
    release = ReleaseEvent(APP, 124, released)
    b0, b1 = released - config.window, released
    a0, a1 = released + config.settle, released + config.settle + config.window
    extract, judge = [], []
    findings = []
    for _ in range(rounds):
        start = time.perf_counter()
        before = history.window(b0, b1)
        after = history.window(a0, a1)
        middle = time.perf_counter()
        assert before is not None and after is not None
        findings = compare(release.app, before, after, config)
        end = time.perf_counter()
        extract.append((middle - start) * 1000)
        judge.append((end - middle) * 1000)
    e, j = statistics.median(extract), statistics.median(judge)
    total = e + j
    regressed = sum(f.regressed for f in findings)
    print(
        f"compare, {what}: 200 routes, 100 queries, 24 gauges, "
        f"{config.window / 60:.0f} m windows, median of {rounds} rounds"
    )
    print(f"  window extraction {e:7.2f} ms")
    print(f"  tests and effects {j:7.2f} ms   ({len(findings)} findings, {regressed} regressed)")
    print(f"  total per release {total:7.2f} ms   target 100 ms, ratio {total / 100:.2f}")


async def detection(per_minute: int) -> float | None:
    from deploy_replay import Phase, Replay, Traffic, named

    replay = Replay({})
    await replay.start()
    try:
        await replay.minutes(40, Phase(routes={r: Traffic(per_minute) for r in Phase().routes}))
        await replay.release(124)
        release_minute = len(replay.samples)
        after = Phase(routes={r: Traffic(per_minute) for r in Phase().routes})
        after.routes["/checkout"] = Traffic(per_minute, median_ms=190.0)
        await replay.minutes(40, after)
    finally:
        await replay.stop()
    for i, samples in enumerate(replay.samples[release_minute:]):
        if named(samples, "monitor_release_regression"):
            return float(i + 1)
    return None


def bench_detection(rates: list[int]) -> None:
    print(
        "detection: /checkout 2x slower from the release, default windows "
        "(settle 5 m, first look 10 m, window 30 m), rule `for` 0"
    )
    for rate in rates:
        minutes = asyncio.run(detection(rate))
        shown = "not detected in 40 m" if minutes is None else f"{minutes:.0f} min"
        print(f"  {rate:4d} requests/min per route: first regressed request -> alert {shown}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    bench_compare(50 if args.full else 10)
    bench_detection([10, 40, 200] if args.full else [10, 40])


if __name__ == "__main__":
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(open("/dev/null", "w")))  # noqa: SIM115
    main()

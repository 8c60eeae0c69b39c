"""The regression rule's history after a day and a half, thinned against one point a step.

Feeds statement series (``--series``, 1,000; 5,000 with every statement exported) the
points the rule records with its default settings (a 15 min window, a 1 day baseline: a
point every 150 s) for a day and a half, once with the history as it is kept (one point a step over
the window, one an hour before it) and once with one point a step throughout (as before
the thinning), and prints, side by side: points held (= state-database rows), the memory
of the histories (every object they hold, counted once), and the CPU per recorded point.

``uv run python bench/bench_regression_history.py [--series N]``
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from alerts.rules.regression import History, Point, RegressionSettings, record


@dataclass(frozen=True, slots=True)
class EveryStep(RegressionSettings):
    """One point a step throughout: nothing is thinned."""

    @property
    def coarse_step(self) -> float:
        return self.step


def run(settings: RegressionSettings, series: int) -> tuple[int, int, float]:
    """Points held, bytes of the histories, CPU seconds per recorded point."""
    steps = int(1.5 * 86400 / settings.step)
    histories: list[History] = [() for _ in range(series)]
    started = time.process_time()
    for i in range(steps):
        monotonic, wall = i * settings.step, 1_800_000_000.0 + i * settings.step
        for n in range(series):
            point = Point(monotonic, wall, 100.0 * (i + 1), 0.01 * (i + 1) * (n % 7 + 1))
            histories[n] = record(histories[n], point, settings).history
    cpu = time.process_time() - started
    return sum(len(h) for h in histories), size_of(histories), cpu / (steps * series)


def size_of(histories: list[History]) -> int:
    """Bytes of the history tuples, their points and the points' floats, each object once
    (points of one step share their clock readings, as in the rule)."""
    seen: set[int] = set()
    total = 0
    for history in histories:
        total += sys.getsizeof(history)
        for point in history:
            for obj in (point, point.monotonic, point.wall, point.calls, point.seconds):
                if id(obj) not in seen:
                    seen.add(id(obj))
                    total += sys.getsizeof(obj)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--series",
        type=int,
        default=1000,
        help="statement series (5,000: every statement exported; ~5 min)",
    )
    args = parser.parse_args()
    kept = run(RegressionSettings(), args.series)
    every = run(EveryStep(), args.series)
    print(f"{args.series} statement series, a day and a half at the default window and baseline")
    for name, (points, size, cpu) in (("thinned (as kept)", kept), ("one point a step", every)):
        print(
            f"  {name:<18} {points:>9,} points = state-database rows "
            f"({points / args.series:5.1f} per series)   {size / 2**20:7.1f} MiB   "
            f"{cpu * 1e6:5.2f} us CPU per recorded point"
        )
    print(
        f"ratios: {every[0] / kept[0]:.1f}x fewer points and rows, "
        f"{every[1] / kept[1]:.1f}x less memory, CPU per point {kept[2] / every[2]:.2f}x"
    )


if __name__ == "__main__":
    main()

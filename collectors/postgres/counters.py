"""Counters that never go backwards, built from server counters that can reset.

PostgreSQL's cumulative statistics restart at zero after ``pg_stat_reset()``,
``pg_stat_statements_reset()``, an eviction, a crash or a failover. A job keeps, per
series, the last raw value it read and a running total it exports: each run adds the
positive difference; a decrease (or an explicit reset signal) means the server counter
restarted, so the whole new raw value is the increase since the restart. The exported
total therefore only grows, and nothing downstream ever sees a negative rate.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class RunningTotals(Generic[K]):
    """Per-key running totals of a fixed number of cumulative values.

    The first reading of a key starts its total at the raw value (so a fresh daemon
    exports what the server shows); later readings add their increase.
    """

    def __init__(self) -> None:
        self._last: dict[K, tuple[float, ...]] = {}
        self._total: dict[K, list[float]] = {}

    def update(self, key: K, values: Sequence[float], *, reset: bool = False) -> list[float]:
        """Feed the raw values read now; returns the running totals (do not mutate)."""
        raw = tuple(values)
        total = self._total.get(key)
        last = self._last.get(key)
        if total is None:
            total = self._total[key] = list(raw)
        elif last is None or reset or any(v < p for v, p in zip(raw, last, strict=True)):
            for i, v in enumerate(raw):
                total[i] += v
        else:
            for i, v in enumerate(raw):
                total[i] += v - last[i]
        self._last[key] = raw
        return total

    def retain(self, keys: set[K]) -> None:
        """Forget every key not in ``keys`` (a dropped database, a vanished series)."""
        for key in [k for k in self._total if k not in keys]:
            del self._total[key]
            self._last.pop(key, None)

    def __len__(self) -> int:
        return len(self._total)

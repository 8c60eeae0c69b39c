"""Counters that never go backwards, and deltas over the last interval.

Servers reset their counters when they restart (Redis also on ``CONFIG RESETSTAT``,
PgBouncer when a database is re-added). The monitor keeps its own running total per
counter, in the job object across runs, so an exported ``*_total`` only ever grows:
after a reset the new raw value is the increase since the reset.

A group of counters resets together. It is reset when the caller says the server
restarted (new ``run_id``, new pid, uptime went down) or when any counter of the group
went down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Update:
    """The result of one reading of a counter group."""

    totals: dict[str, float]
    """Running total per counter present in this reading (never decreasing)."""
    deltas: dict[str, float] | None
    """Increase per counter since the previous reading; None on the first reading."""
    reset: bool
    """True when the server's counters were reset since the previous reading."""


class CounterGroup:
    """Running totals for counters that a server resets together."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._totals: dict[str, float] = {}
        self._seen = False

    def update(self, raw: Mapping[str, float], *, restarted: bool = False) -> Update:
        """Feed one reading of the raw counters; ``restarted`` forces a reset."""
        if not self._seen:
            self._seen = True
            self._last = dict(raw)
            self._totals = dict(raw)
            return Update(dict(raw), None, reset=False)
        reset = restarted or any(
            value < self._last[key] for key, value in raw.items() if key in self._last
        )
        deltas: dict[str, float] = {}
        for key, value in raw.items():
            base = 0.0 if reset else self._last.get(key, 0.0)
            deltas[key] = value - base
            self._totals[key] = self._totals.get(key, 0.0) + deltas[key]
        if reset:
            self._last = {}
        self._last.update(raw)
        return Update({key: self._totals[key] for key in raw}, deltas, reset=reset)


def ratio(part: float, whole: float) -> float | None:
    """``part / whole``, or None when ``whole`` is zero (the ratio is then absent)."""
    return part / whole if whole > 0 else None

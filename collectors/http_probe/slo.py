"""Probe results over sliding windows, for an availability SLO with burn-rate alerts.

Burn rate = error ratio / (1 - objective) (Google SRE workbook, "Alerting on SLOs").
A pair of windows alerts when both burn faster than the rate that would consume the
given share of the error budget over the long window; for a 30-day SLO that is 14.4
(2% in 1 h), 6 (5% in 6 h), 3 (10% in 1 d) and 1 (10% in 3 d).

Results are kept in memory only, in fixed rings of time buckets (bounded whatever the
probe interval): after a restart the daemon knows nothing before its start. A window
reports a burn rate only once it holds ``min_samples`` results: with a probe every 30 s
a 5 m window holds 10, so a single failure is a 10% error ratio.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AlertWindows:
    severity: str
    long: float
    short: float
    budget_share: float
    """Share of the whole error budget that burning at the threshold for ``long`` uses."""

    def factor(self, slo_window: float) -> float:
        return self.budget_share * slo_window / self.long

    @property
    def label(self) -> str:
        return f"{window_label(self.long)}/{window_label(self.short)}"


MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
ALERTS = (
    AlertWindows("page", HOUR, 5 * MINUTE, 0.02),
    AlertWindows("page", 6 * HOUR, 30 * MINUTE, 0.05),
    AlertWindows("ticket", DAY, 2 * HOUR, 0.10),
    AlertWindows("ticket", 3 * DAY, 6 * HOUR, 0.10),
)
WINDOWS = tuple(sorted({w for a in ALERTS for w in (a.long, a.short)}))


def window_label(seconds: float) -> str:
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


class BucketRing:
    """Counts of (results, failures) per time bucket over a fixed span.

    Each bucket remembers the running totals from when it opened, so the counts of the
    last ``span`` seconds are the running totals minus those of the oldest bucket in the
    span that holds results: one lookup when results keep coming, instead of a walk over
    every bucket of the span (8,640 for 3 days of 30 s buckets) per window per probe.
    """

    def __init__(self, span: float, width: float) -> None:
        self.width = width
        self._n = math.ceil(span / width) + 1
        self._stamp = array("q", [-1] * self._n)
        self._base_total = array("Q", [0] * self._n)
        self._base_failed = array("Q", [0] * self._n)
        self._total = 0
        self._failed = 0
        self._first = -1
        """Index of the first bucket that ever held a result: no older one is scanned."""

    def add(self, t: float, ok: bool) -> None:
        index = int(t // self.width)
        slot = index % self._n
        if self._stamp[slot] != index:
            if self._first < 0:
                self._first = index
            self._stamp[slot] = index
            self._base_total[slot], self._base_failed[slot] = self._total, self._failed
        self._total += 1
        if not ok:
            self._failed += 1

    def counts(self, now: float, span: float) -> tuple[int, int]:
        """(results, failures) in the last ``span`` seconds, to bucket precision.

        Results are added in time order and none after ``now``: everything added since
        the oldest bucket of the span that holds results lies within the span.
        """
        last = int(now // self.width)
        buckets = min(self._n, max(1, round(span / self.width)))
        # a young daemon has nothing in most of a 30-day window's buckets: start at the
        # first that was ever filled instead of scanning thousands of empty ones
        for index in range(max(last - buckets + 1, self._first), last + 1):
            slot = index % self._n
            if self._stamp[slot] == index:
                return self._total - self._base_total[slot], self._failed - self._base_failed[slot]
        return 0, 0


@dataclass(frozen=True, slots=True)
class SloStatus:
    samples: dict[float, int]
    """Results per window (seconds)."""
    burn_rates: dict[float, float]
    """Per window holding at least ``min_samples`` results."""
    alerts: dict[AlertWindows, bool]
    """Per window pair whose windows both report a burn rate."""
    budget_remaining: float
    """1 - failures seen / failures the objective allows over the SLO window."""
    observed: float
    """Seconds of the SLO window the daemon has seen (since it started)."""


class SloTracker:
    def __init__(
        self, objective: float, window: float, min_samples: int, interval: float, started: float
    ) -> None:
        self.objective = objective
        self.window = window
        self.min_samples = min_samples
        self.interval = interval
        self._started = started
        self._fine = BucketRing(max(WINDOWS), width=min(WINDOWS) / 10)
        self._coarse = BucketRing(window, width=max(HOUR, window / 1000))

    def record(self, t: float, ok: bool) -> None:
        self._fine.add(t, ok)
        self._coarse.add(t, ok)

    def status(self, now: float) -> SloStatus:
        budget = 1.0 - self.objective
        samples: dict[float, int] = {}
        burn: dict[float, float] = {}
        for window in WINDOWS:
            total, failed = self._fine.counts(now, window)
            samples[window] = total
            if total >= self.min_samples:
                burn[window] = failed / total / budget
        alerts = {
            a: burn[a.long] > a.factor(self.window) and burn[a.short] > a.factor(self.window)
            for a in ALERTS
            if a.long in burn and a.short in burn
        }
        _, failed = self._coarse.counts(now, self.window)
        allowed = budget * self.window / self.interval
        observed = min(self.window, now - self._started)
        return SloStatus(samples, burn, alerts, 1.0 - failed / allowed, observed)

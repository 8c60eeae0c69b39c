"""The last few minutes of beacons, for rules: the cumulative ``webvitals_*`` histograms
answer "since start"; an alert needs "now".

Reports are counted into time slots (a tenth of the window each) of per-bucket counts;
a summary adds up the slots inside the window. Memory is bounded by routes x metrics x
slots x buckets, whatever the traffic.

The 75th percentile is interpolated within its bucket, as ``histogram_quantile`` does.
The good and poor thresholds are bucket edges, so ``p75 > good`` holds exactly when
fewer than 75% of the reports were good: a rule on the p75 is exact at the thresholds.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from collectors.rum.config import RumConfig
from collectors.web_vitals import VitalName

SLOTS = 10
TRACKED_CLIENTS = 1000
"""Client addresses remembered per metric, route and slot; past this many distinct
clients the per-client cap stops applying to newcomers (there is plenty of real traffic)."""


@dataclass(slots=True)
class _SlotCounts:
    counts: list[int]
    clients: dict[int, int]
    """Hashed client address -> reports counted in this slot."""


@dataclass(frozen=True, slots=True)
class RecentSummary:
    metric: VitalName
    route: str
    reports: int
    clients: int
    """Distinct client addresses among the reports (at most ``TRACKED_CLIENTS``)."""
    good_ratio: float
    poor_ratio: float
    p75: float


def quantile(q: float, bounds: tuple[float, ...], counts: list[int]) -> float:
    """The ``q`` quantile of non-cumulative ``counts`` (the last bucket is +Inf),
    interpolated linearly within its bucket from the previous bound (0 for the first)."""
    total = sum(counts)
    rank = q * total
    running = 0
    for i, n in enumerate(counts):
        if n and running + n >= rank:
            if i == len(bounds):  # +Inf: the highest finite bound, as Prometheus does
                return bounds[-1]
            lower = bounds[i - 1] if i else 0.0
            return lower + (bounds[i] - lower) * (rank - running) / n
        running += n
    return bounds[-1]


class RecentHistograms:
    def __init__(self, config: RumConfig, bounds: dict[VitalName, tuple[float, ...]]) -> None:
        self.window = config.window
        self.width = config.window / SLOTS
        self.bounds = bounds
        self._edges = {m: config.thresholds.of(m) for m in bounds}
        self._per_client = config.max_reports_per_client
        self._slots: dict[int, dict[tuple[VitalName, str], _SlotCounts]] = {}

    def observe(
        self, metric: VitalName, route: str, value: float, now: float, client: int = 0
    ) -> bool:
        """Count one report from ``client`` (a hashed address); False when that client
        already reached its share of this slot."""
        index = int(now // self.width)
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = {}
            self._prune(index)
        bounds = self.bounds[metric]
        entry = slot.get((metric, route))
        if entry is None:
            entry = slot[(metric, route)] = _SlotCounts([0] * (len(bounds) + 1), {})
        seen = entry.clients.get(client)
        if seen is not None:
            if seen >= self._per_client:
                return False
            entry.clients[client] = seen + 1
        elif len(entry.clients) < TRACKED_CLIENTS:
            entry.clients[client] = 1
        entry.counts[bisect_left(bounds, value)] += 1
        return True

    def _prune(self, current: int) -> None:
        for index in [i for i in self._slots if i <= current - SLOTS]:
            del self._slots[index]

    def summaries(self, now: float) -> list[RecentSummary]:
        """Per (metric, route) with reports in the last ``window`` (to a slot's precision:
        the current slot and the nine before it)."""
        current = int(now // self.width)
        self._prune(current)
        totals: dict[tuple[VitalName, str], list[int]] = {}
        clients: dict[tuple[VitalName, str], set[int]] = {}
        for index, slot in self._slots.items():
            if index > current:
                continue
            for key, entry in slot.items():
                total = totals.get(key)
                if total is None:
                    totals[key] = list(entry.counts)
                    clients[key] = set(entry.clients)
                else:
                    for i, n in enumerate(entry.counts):
                        total[i] += n
                    clients[key].update(entry.clients)
        out = []
        for (metric, route), counts in sorted(totals.items()):
            bounds = self.bounds[metric]
            reports = sum(counts)
            edges = self._edges[metric]
            good = sum(counts[: bisect_left(bounds, round(edges.good, 9)) + 1])
            not_poor = sum(counts[: bisect_left(bounds, round(edges.poor, 9)) + 1])
            out.append(
                RecentSummary(
                    metric,
                    route,
                    reports,
                    min(len(clients[(metric, route)]), TRACKED_CLIENTS),
                    good / reports,
                    (reports - not_poor) / reports,
                    quantile(0.75, bounds, counts),
                )
            )
        return out

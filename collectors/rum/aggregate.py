"""Aggregate accepted reports into histograms, once per metric id.

The web-vitals library reports CLS and INP again whenever the page is hidden and the
value changed, with the same ``id``; every metric is reported again (with a new id)
after a back/forward-cache restore. So:

* LCP, FCP and TTFB count at their first report; repeats of an id are dropped;
* CLS and INP wait ``settle`` seconds after their first report, keeping the latest
  value, and only then count (a histogram can never take an observation back);
* an id that has been counted is remembered for ``dedupe_window`` and repeats dropped.

Memory is bounded: at most ``max_tracked_ids`` ids are remembered or pending; beyond
that the oldest are forgotten (pending ones counted at once).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, OrderedDict

from collectors.rum.beacon import Report
from collectors.rum.config import RumConfig
from collectors.rum.recent import RecentHistograms
from collectors.web_vitals import VITAL_NAMES, VitalName

BASE_BUCKETS: dict[VitalName, tuple[float, ...]] = {
    "lcp": (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 15, 20),
    "inp": (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2, 5),
    "cls": (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1),
    "fcp": (0.5, 1, 1.5, 1.8, 2.5, 3, 4, 5, 6, 8, 10, 15, 20),
    "ttfb": (0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.2, 1.5, 1.8, 2.5, 4, 6, 10),
}
"""Bucket upper bounds in base units; the configured thresholds are always added, so
the share of good and poor values is exact."""
SETTLING: frozenset[VitalName] = frozenset({"cls", "inp"})


def bucket_bounds(config: RumConfig, metric: VitalName) -> tuple[float, ...]:
    threshold = config.thresholds.of(metric)
    edges = {round(float(b), 9) for b in BASE_BUCKETS[metric]}
    edges |= {round(threshold.good, 9), round(threshold.poor, 9)}
    return tuple(sorted(edges))


class Histogram:
    """Non-cumulative counts per bucket (the last is +Inf), a sum and a count."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: value <= bound
        self.count += 1
        self.total += value

    def cumulative(self) -> list[int]:
        out, running = [], 0
        for n in self.counts:
            running += n
            out.append(running)
        return out


_Pending = tuple[VitalName, str, float, float, int]
"""A CLS/INP value waiting to settle: (metric, route, value, due, client hash). A plain
tuple of atoms, never a NamedTuple: the garbage collector stops tracking an exact tuple
whose items are all atoms, so 100,000 of them add nothing to a full collection's pause
(a NamedTuple subclass stays tracked: each full collection walked every one of them)."""


class Aggregator:
    def __init__(self, config: RumConfig) -> None:
        self.config = config
        self.bounds = {m: bucket_bounds(config, m) for m in VITAL_NAMES}
        self.histograms: dict[tuple[VitalName, str], Histogram] = {}
        self.accepted: Counter[VitalName] = Counter()
        self.duplicates: Counter[VitalName] = Counter()
        self.capped: Counter[VitalName] = Counter()
        """Reports left out of the window (over one client's share), per metric."""
        self.recent = RecentHistograms(config, self.bounds)
        """The same counts over the last ``config.window`` only, for the Rum* rules."""
        # OrderedDicts, not dicts: taking the oldest entry of a dict whose front was
        # deleted scans the deleted slots (O(n) until the next resize); here it is O(1)
        self._seen: OrderedDict[int, float] = OrderedDict()
        """Counted ids (hashed) -> when to forget them; insertion order is expiry order."""
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        """CLS/INP ids waiting to settle; insertion order is due order."""

    def add(self, report: Report, route: str, now: float, client: str = "") -> None:
        """Take one valid report (``now`` is a monotonic time) from ``client`` (its
        address, kept only as a hash for the window's distinct-client count)."""
        client_key = hash(client)
        key = hash((report.metric, report.id))
        pending = self._pending.get(key)
        if pending is not None:
            # the latest value of a growing CLS/INP wins
            metric, route_was, _, due, hashed = pending
            self._pending[key] = (metric, route_was, report.value, due, hashed)
            self.duplicates[report.metric] += 1
            return
        if key in self._seen:
            self.duplicates[report.metric] += 1
            return
        self.accepted[report.metric] += 1
        if report.metric in SETTLING:
            if len(self._pending) >= self.config.max_tracked_ids:
                self._count(*self._pending.popitem(last=False), now)
            self._pending[key] = (
                report.metric,
                route,
                report.value,
                now + self.config.settle,
                client_key,
            )
        else:
            self._observe(report.metric, route, report.value, now, client_key)
            self._remember(key, now)

    def _observe(
        self, metric: VitalName, route: str, value: float, now: float, client: int
    ) -> None:
        histogram = self.histograms.get((metric, route))
        if histogram is None:
            histogram = self.histograms[(metric, route)] = Histogram(self.bounds[metric])
        histogram.observe(value)
        if not self.recent.observe(metric, route, value, now, client):
            self.capped[metric] += 1

    def _remember(self, key: int, now: float) -> None:
        seen = self._seen
        if len(seen) >= self.config.max_tracked_ids:
            seen.popitem(last=False)
        seen[key] = now + self.config.dedupe_window

    def _count(self, key: int, pending: _Pending, now: float) -> None:
        metric, route, value, _, client = pending
        self._observe(metric, route, value, now, client)
        self._remember(key, now)

    def flush(self, now: float, *, everything: bool = False) -> int:
        """Count settled CLS/INP values and forget expired ids; returns how many counted."""
        counted = 0
        pending = self._pending
        while pending:
            key = next(iter(pending))
            item = pending[key]
            if item[3] > now and not everything:  # due
                break
            del pending[key]
            self._count(key, item, now)
            counted += 1
        seen = self._seen
        while seen:
            key = next(iter(seen))
            if seen[key] > now:
                break
            del seen[key]
        return counted

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def tracked(self) -> int:
        return len(self._seen)

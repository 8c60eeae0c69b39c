"""Everything the drain has counted, by app, with bounded label sets only.

Raw paths, request ids, ``fwd`` addresses and dyno instance uuids never become keys:
router series are keyed by (app, method, status class, route pattern), dyno series by the
formation name (``web.1``; one-off ``run.4821`` becomes ``run``). A global cap
(``max_series``) bounds what is left; label sets past it are dropped and counted.

Two views: cumulative counters, histograms and latest gauges (rendered by
:mod:`.metrics`), and a sliding ``window`` of slots for the rules (:mod:`.window_job`).
Times: ``now`` is monotonic (windows, staleness), ``wall`` is Unix time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, TypeVar

from collectors.heroku_logs.histogram import (
    CONNECT_BOUNDS,
    GENERIC_BOUNDS,
    SERVICE_BOUNDS,
    Histogram,
)

SLOTS = 30
"""The window is kept as this many slots (10 s each for a 5 m window)."""
_K = TypeVar("_K")


class RouterSeries:
    __slots__ = ("bytes", "connect", "requests", "service")

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0.0
        self.service = Histogram(SERVICE_BOUNDS)
        self.connect = Histogram(CONNECT_BOUNDS)


class WindowSlot:
    """One slot of one app's rule window."""

    __slots__ = ("crashes", "dyno_codes", "requests", "router_codes", "server_errors", "service")

    def __init__(self) -> None:
        self.requests = 0
        self.server_errors = 0
        self.service = [0] * (len(SERVICE_BOUNDS) + 1)
        self.router_codes: Counter[str] = Counter()
        self.crashes: Counter[str] = Counter()
        self.dyno_codes: Counter[tuple[str, str]] = Counter()


@dataclass(slots=True)
class WindowTotals:
    requests: int = 0
    server_errors: int = 0
    service: list[int] = field(default_factory=lambda: [0] * (len(SERVICE_BOUNDS) + 1))
    router_codes: Counter[str] = field(default_factory=Counter)
    crashes: Counter[str] = field(default_factory=Counter)
    dyno_codes: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped: float = 0.0


@dataclass(slots=True)
class Gauges:
    """Latest values of one dyno or add-on attachment, and when they came."""

    values: dict[tuple[str, str], float]
    seen: float


class DrainState:
    def __init__(self, *, window: float, stale_after: float, max_series: int) -> None:
        self.window = window
        self.stale_after = stale_after
        self.max_series = max_series
        self.series = 0
        self.series_dropped = 0
        self._slot_len = window / SLOTS
        self._slots: deque[tuple[int, dict[str, WindowSlot]]] = deque()
        self._dropped_slots: deque[tuple[int, Counter[str]]] = deque()
        # drain bookkeeping
        self.requests: Counter[str] = Counter()  # by outcome, over all apps
        self.frames: Counter[tuple[str, str]] = Counter()  # (app, outcome)
        self.lines: Counter[tuple[str, str, str]] = Counter()  # (app, kind, outcome)
        self.undecodable: Counter[str] = Counter()
        self.count_mismatches: Counter[str] = Counter()
        self.last_frame: dict[str, float] = {}
        # router
        self.router: dict[tuple[str, str, str, str], RouterSeries] = {}
        self.router_errors: dict[tuple[str, str], float] = {}
        # dynos
        self.dyno_gauges: dict[tuple[str, str], Gauges] = {}
        self.dyno_pages: dict[tuple[str, str, str], float] = {}
        self.dyno_errors: dict[tuple[str, str, str], float] = {}
        self.state_changes: dict[tuple[str, str, str, str], float] = {}
        self.exits: dict[tuple[str, str, str], float] = {}
        self.restarts: dict[tuple[str, str, str], float] = {}
        self.boot_seconds: dict[tuple[str, str, str], tuple[float, float]] = {}
        # add-ons: (family, app, source, addon)
        self.addon_gauges: dict[tuple[str, str, str, str], Gauges] = {}
        # logplex, platform
        self.logplex_dropped: dict[str, float] = {}
        self.logplex_errors: dict[tuple[str, str], float] = {}
        self.platform_events: dict[tuple[str, str], float] = {}
        # l2met
        self.app_counts: dict[tuple[str, str], float] = {}
        self.app_samples: dict[tuple[str, str, str], tuple[float, float]] = {}
        self.app_measures: dict[tuple[str, str, str], Histogram] = {}
        self.app_dropped: Counter[tuple[str, str]] = Counter()

    # -- bounded tables --------------------------------------------------------------------

    def admit(self) -> bool:
        """Whether one more label set fits under ``max_series`` (counts it if so)."""
        if self.series < self.max_series:
            self.series += 1
            return True
        self.series_dropped += 1
        return False

    def bump(self, table: dict[_K, float], key: _K, n: float = 1.0) -> None:
        if key in table:
            table[key] += n
        elif self.admit():
            table[key] = n

    # -- the rule window ---------------------------------------------------------------------

    def slot(self, app: str, now: float) -> WindowSlot:
        slot_id = int(now / self._slot_len)
        if self._slots and self._slots[-1][0] == slot_id:
            found = self._slots[-1][1].get(app)
            if found is not None:
                return found
        else:
            self._slots.append((slot_id, {}))
            while self._slots[0][0] <= slot_id - SLOTS:
                self._slots.popleft()
        apps = self._slots[-1][1]
        found = apps.get(app)
        if found is None:
            found = apps[app] = WindowSlot()
        return found

    def window_totals(self, now: float) -> dict[str, WindowTotals]:
        oldest = int(now / self._slot_len) - SLOTS
        out: dict[str, WindowTotals] = {}
        for slot_id, apps in self._slots:
            if slot_id <= oldest:
                continue
            for app, slot in apps.items():
                totals = out.get(app)
                if totals is None:
                    totals = out[app] = WindowTotals()
                totals.requests += slot.requests
                totals.server_errors += slot.server_errors
                totals.service = [a + b for a, b in zip(totals.service, slot.service, strict=True)]
                totals.router_codes.update(slot.router_codes)
                totals.crashes.update(slot.crashes)
                totals.dyno_codes.update(slot.dyno_codes)
        for slot_id, dropped in self._dropped_slots:
            if slot_id <= oldest:
                continue
            for app, n in dropped.items():
                out.setdefault(app, WindowTotals()).dropped += n
        return out

    # -- recording -------------------------------------------------------------------------

    def record_request(
        self,
        app: str,
        method: str,
        status_class: str,
        route: str,
        service: float | None,
        connect: float | None,
        size: float,
        code: str | None,
        now: float,
    ) -> None:
        key = (app, method, status_class, route)
        series = self.router.get(key)
        if series is None:
            if not self.admit():
                return
            series = self.router[key] = RouterSeries()
        series.requests += 1
        series.bytes += size
        slot = self.slot(app, now)
        slot.requests += 1
        if status_class == "5xx":
            slot.server_errors += 1
        if service is not None:
            i = bisect_left(SERVICE_BOUNDS, service)
            histogram = series.service
            histogram.counts[i] += 1
            histogram.sum += service
            histogram.count += 1
            slot.service[i] += 1
        if connect is not None:
            series.connect.add(connect)
        if code is not None:
            self.bump(self.router_errors, (app, code))
            slot.router_codes[code] += 1

    def set_dyno_gauges(
        self, app: str, process: str, values: dict[tuple[str, str], float], now: float
    ) -> None:
        key = (app, process)
        found = self.dyno_gauges.get(key)
        if found is None:
            if not self.admit():
                return
            self.dyno_gauges[key] = Gauges(dict(values), now)
            return
        found.values.update(values)
        found.seen = now

    def set_addon_gauges(
        self,
        family: str,
        app: str,
        source: str,
        addon: str,
        values: dict[tuple[str, str], float],
        now: float,
    ) -> None:
        key = (family, app, source, addon)
        found = self.addon_gauges.get(key)
        if found is None:
            if not self.admit():
                return
            self.addon_gauges[key] = Gauges(dict(values), now)
            return
        found.values = dict(values)  # a line is a complete sample of the attachment
        found.seen = now

    def dyno_error(self, app: str, process: str, code: str, now: float) -> None:
        self.bump(self.dyno_errors, (app, process, code))
        self.slot(app, now).dyno_codes[(process, code)] += 1

    def crashed(self, app: str, process: str, now: float) -> None:
        self.slot(app, now).crashes[process] += 1

    def dropped(self, app: str, n: float, now: float) -> None:
        self.bump(self.logplex_dropped, app, n)
        slot_id = int(now / self._slot_len)
        if not self._dropped_slots or self._dropped_slots[-1][0] != slot_id:
            self._dropped_slots.append((slot_id, Counter()))
            while self._dropped_slots[0][0] <= slot_id - SLOTS:
                self._dropped_slots.popleft()
        self._dropped_slots[-1][1][app] += int(n)

    # -- staleness ---------------------------------------------------------------------------

    def expire(self, now: float) -> None:
        """Forget gauges of dynos and attachments that stopped reporting."""
        limit = now - self.stale_after
        for table in (self.dyno_gauges, self.addon_gauges):
            gone: list[Any] = [k for k, g in table.items() if g.seen < limit]
            for key in gone:
                del table[key]
                self.series -= 1
        old = [k for k, (_, seen) in self.app_samples.items() if seen < limit]
        for key in old:
            del self.app_samples[key]
            self.series -= 1
        stale_boots = [k for k, (_, seen) in self.boot_seconds.items() if seen < limit]
        for key in stale_boots:
            del self.boot_seconds[key]
            self.series -= 1


def measure_histogram() -> Histogram:
    return Histogram(GENERIC_BOUNDS)

"""Render the snapshot store for Prometheus, on a private registry, without I/O.

:class:`StoreCollector` is a custom collector (prometheus_client's pattern for proxied
state): on every collect it turns the latest snapshots into metric families. It also
renders the daemon's own health::

    monitor_collector_up{collector="postgres",target="primary"} 1.0
    monitor_collector_duration_seconds{collector="postgres",target="primary"} 0.004
    monitor_collector_last_success_timestamp_seconds{collector="postgres",target="primary"} 1.7e9
    monitor_collector_runs_total{collector="postgres",target="primary",status="success"} 12.0

Scrapes do not go through that collector: :class:`Exposition` writes the same bytes, in
the Prometheus text format or OpenMetrics, with :class:`~monitor.kernel.store_text.StoreText`
for the store's samples (per-snapshot caches),
:class:`~monitor.kernel.self_metrics_text.SelfMetricsText` for the self-metrics (per-job
caches) and :func:`~monitor.kernel.family_text.render_families` for the families of
collectors registered by components. The body is cached per store generation and
format, and its gzip per body; once scrapes come in, both are rebuilt shortly after a
store change (one render for a collection cycle's burst of changes), off the scrape's
path, so a scrape at any other moment of the interval is served from memory. The render
and its compression run in one worker thread (:meth:`Exposition.render_async`), so a
render of tens of thousands of samples never holds the event loop for longer than the
interpreter's switch interval (5 ms); only the components' families are collected on
the loop, since they read state the loop changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.kernel.family_text import render_families
from monitor.kernel.self_metrics_text import SelfMetricsText
from monitor.kernel.snapshot import MetricKind, MetricSpec, Snapshot
from monitor.kernel.snapshot_store import JobStatus, SnapshotStore
from monitor.kernel.store_text import StoreText, unit_of

log = structlog.get_logger("monitor.exposition")

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
EOF_LINE = "# EOF\n"
RENDER_AHEAD_FOR = 600.0
"""A format not asked for in this many seconds (a one-off curl) is no longer rendered
ahead; Prometheus asks for its format every scrape interval."""
RENDER_AHEAD_DELAY = 1.0
"""The render ahead starts once the store has not changed for this many seconds: the
jobs of one collection cycle finish within moments of each other (a fleet's 440 jobs over
two or three seconds), so one render covers the burst (a scrape in between renders for
itself)."""
RENDER_AHEAD_MAX_WAIT = 5.0
"""Seconds after the first change of a burst when the render ahead starts even if the
store keeps changing (custom queries spread over the interval never pause for long)."""
GZIP_LEVEL = 1
"""Fastest compression: /metrics text compresses ~10x even at level 1, and a large
pg_stat_statements export (4 MB) takes ~17 ms instead of ~60 ms at level 5; zlib
releases the GIL, so it runs in a worker thread, off the event loop."""

Variant = tuple[bool, bool]
"""How a scraper asked for the exposition: (OpenMetrics, gzip)."""


def _family(spec: MetricSpec) -> Metric:
    names = list(spec.label_names)
    if spec.kind is MetricKind.COUNTER:
        return CounterMetricFamily(spec.name, spec.help, labels=names, unit=unit_of(spec))
    if spec.kind is MetricKind.INFO:
        return InfoMetricFamily(spec.name.removesuffix("_info"), spec.help, labels=names)
    return GaugeMetricFamily(spec.name, spec.help, labels=names, unit=unit_of(spec))


class StoreCollector(Collector):
    """Turns the store's current snapshots and job statuses into metric families."""

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        yield from self.self_metrics()
        families: dict[str, tuple[MetricSpec, Metric, set[tuple[str, ...]]]] = {}
        for snapshot in self._store.snapshots():
            for sample in snapshot.samples:
                spec = sample.spec
                entry = families.get(spec.name)
                if entry is None:
                    entry = families[spec.name] = (spec, _family(spec), set())
                _, family, seen = entry
                if sample.label_values in seen:
                    continue  # never emit a duplicate series, whatever a collector did
                seen.add(sample.label_values)
                if isinstance(family, InfoMetricFamily):
                    family.add_metric(list(sample.label_values), {})
                elif isinstance(family, GaugeMetricFamily | CounterMetricFamily):
                    family.add_metric(list(sample.label_values), sample.value)
        for _, family, _ in families.values():
            yield family

    def self_metrics(self, statuses: Iterable[JobStatus] | None = None) -> Iterator[Metric]:
        """The self-metrics of ``statuses`` (default: the store's current ones)."""
        labels = ["collector", "target"]
        up = GaugeMetricFamily(
            "monitor_collector_up", "1 if the collector's last run succeeded, else 0", labels=labels
        )
        duration = GaugeMetricFamily(
            "monitor_collector_duration_seconds",
            "Duration of the collector's last run",
            labels=labels,
            unit="seconds",
        )
        last = GaugeMetricFamily(
            "monitor_collector_last_success_timestamp_seconds",
            "Unix time of the collector's last successful run",
            labels=labels,
            unit="seconds",
        )
        runs = CounterMetricFamily(
            "monitor_collector_runs",
            "Collector runs by outcome (success, error, timeout)",
            labels=[*labels, "status"],
        )
        for st in self._store.statuses() if statuses is None else statuses:
            key = [st.collector, st.target]
            if st.up is not None:
                up.add_metric(key, 1.0 if st.up else 0.0)
                duration.add_metric(key, st.last_duration)
            if st.last_success is not None:
                last.add_metric(key, st.last_success)
            for status, count in sorted(st.runs.items()):
                runs.add_metric([*key, status], count)
        info = InfoMetricFamily(
            "monitor_build", "app-monitor version", value={"version": __version__}
        )
        yield from (up, duration, last, runs, info)


def _frozen(statuses: Iterable[JobStatus]) -> list[JobStatus]:
    # by hand: copy.copy of a slotted dataclass is five times slower, and a fleet has
    # hundreds of jobs
    return [
        JobStatus(
            s.collector,
            s.target,
            s.interval,
            s.up,
            s.last_duration,
            s.last_success,
            s.last_error,
            dict(s.runs),
        )
        for s in statuses
    ]


class Exposition:
    """The daemon's private registry and a per-generation cache of its rendered text."""

    def __init__(
        self,
        store: SnapshotStore,
        extra: Iterable[Collector] = (),
        *,
        render_ahead_delay: float = RENDER_AHEAD_DELAY,
        render_ahead_max_wait: float = RENDER_AHEAD_MAX_WAIT,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._store_collector = StoreCollector(store)
        self.registry.register(self._store_collector)
        # a scrape: self-metrics, the store's samples (StoreText), the extras
        self._extras: list[Collector] = []
        self._store_text = StoreText()
        self._self_metrics_text = SelfMetricsText(self._store_collector.self_metrics)
        for collector in extra:
            self.register(collector)
        self._store = store
        self._cache: dict[bool, tuple[tuple[int, int], bytes]] = {}
        self._compressed: dict[bool, tuple[bytes, bytes]] = {}
        """Per format: the body last compressed, and its gzip."""
        self._wanted: dict[Variant, float] = {}
        """When each variant was last asked for: those asked for within
        :data:`RENDER_AHEAD_FOR` are rendered (and compressed) ahead after a store change,
        the latest first."""
        self._render_ahead_delay = render_ahead_delay
        self._render_ahead_max_wait = render_ahead_max_wait
        self._lock = asyncio.Lock()
        self._prerender_task: asyncio.Task[None] | None = None
        store.on_change(self._render_soon)
        self.extra_generation = 0
        """Bumped by collectors registered here that change outside the store."""

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)
        self._extras.append(collector)

    def _generation(self) -> tuple[int, int]:
        # a snapshot going stale changes the count without a new generation
        return (self._store.generation + self.extra_generation, self._store.live_count())

    def _cached(self, openmetrics: bool, generation: tuple[int, int]) -> bytes | None:
        cached = self._cache.get(openmetrics)
        return cached[1] if cached is not None and cached[0] == generation else None

    def render(self, openmetrics: bool = False) -> bytes:
        """The exposition, built on the calling thread (``monitor once``, tests)."""
        self._wanted[(openmetrics, False)] = time.monotonic()
        generation = self._generation()
        body = self._cached(openmetrics, generation)
        if body is None:
            body, _ = self._prepare(openmetrics, compressed=False)()
            self._cache[openmetrics] = (generation, body)
        return body

    async def render_async(self, openmetrics: bool = False, compressed: bool = False) -> bytes:
        """The exposition (gzipped if ``compressed``), rendered and compressed in one
        worker thread.

        What the render reads is taken on the loop first (the live snapshots, copies of
        the job statuses, the components' metric families), so the loop may go on storing
        snapshots meanwhile; a store change during the render is picked up next time.
        """
        self._wanted[(openmetrics, compressed)] = time.monotonic()
        body = await self._body(openmetrics, compressed)
        if not compressed:
            return body
        cached = self._compressed.get(openmetrics)
        if cached is None or cached[0] is not body:
            gzipped = await asyncio.to_thread(gzip.compress, body, GZIP_LEVEL)
            cached = self._compressed[openmetrics] = (body, gzipped)
        return cached[1]

    async def _body(self, openmetrics: bool, compressed: bool) -> bytes:
        body = self._cached(openmetrics, self._generation())
        if body is not None:
            return body
        async with self._lock:  # one render at a time; a waiter usually finds it cached
            generation = self._generation()
            body = self._cached(openmetrics, generation)
            if body is not None:
                return body
            built, gzipped = await asyncio.to_thread(self._prepare(openmetrics, compressed))
            self._cache[openmetrics] = (generation, built)
            if gzipped is not None:
                self._compressed[openmetrics] = (built, gzipped)
            return built

    def _prepare(
        self, openmetrics: bool, compressed: bool
    ) -> Callable[[], tuple[bytes, bytes | None]]:
        """Reads everything the render needs now; returns the work left (the body, and
        its gzip if ``compressed``), thread-safe."""
        snapshots: Sequence[Snapshot] = self._store.snapshots()
        statuses = _frozen(self._store.statuses())
        # components' collectors read state the loop changes: collected here, on the loop
        extras = [family for collector in self._extras for family in collector.collect()]

        def build() -> tuple[bytes, bytes | None]:
            text = (
                self._self_metrics_text.render(statuses, openmetrics)
                + self._store_text.render(snapshots, openmetrics)
                + render_families(extras, openmetrics)
            )
            body = (text + EOF_LINE if openmetrics else text).encode()
            return body, gzip.compress(body, GZIP_LEVEL) if compressed else None

        return build

    def _render_soon(self) -> None:
        """Once scrapes come in, render right after the store changes, in the background,
        so the next scrape finds the body ready instead of building it."""
        if not self._wanted or self._prerender_task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the next render() builds it
        self._prerender_task = loop.create_task(self._prerender(), name="exposition-prerender")

    async def _prerender(self) -> None:
        try:
            # one render for a burst of changes: once the store is quiet for a moment
            loop = asyncio.get_running_loop()
            latest = loop.time() + self._render_ahead_max_wait
            generation = self._generation()
            while True:
                await asyncio.sleep(min(self._render_ahead_delay, max(0.0, latest - loop.time())))
                if self._generation() == generation or loop.time() >= latest:
                    break
                generation = self._generation()
            recent = time.monotonic() - RENDER_AHEAD_FOR
            wanted = sorted(self._wanted.items(), key=lambda item: -item[1])
            for openmetrics, compressed in [fmt for fmt, asked in wanted if asked >= recent]:
                try:
                    await self.render_async(openmetrics, compressed)
                except Exception:  # a failing collector fails the scrape itself
                    log.debug("exposition render ahead failed", exc_info=True)
        finally:
            self._prerender_task = None

    async def settled(self) -> None:
        """Waits for a render ahead in progress (tests, benches)."""
        task = self._prerender_task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

"""Render the snapshot store for Prometheus, on a private registry, without I/O.

:class:`StoreCollector` is a custom collector (prometheus_client's pattern for proxied
state): on every scrape it turns the latest snapshots into metric families. It also
renders the daemon's own health::

    monitor_collector_up{collector="postgres",target="primary"} 1.0
    monitor_collector_duration_seconds{collector="postgres",target="primary"} 0.004
    monitor_collector_last_success_timestamp_seconds{collector="postgres",target="primary"} 1.7e9
    monitor_collector_runs_total{collector="postgres",target="primary",status="success"} 12.0

The rendered text is cached per store generation, so a scrape costs a dictionary lookup
until a collector stores something new; once scrapes come in, the text is rebuilt right
after each store change, off the scrape's path. The Prometheus text format of the store's own
samples is built by :class:`StoreText` (the same bytes ``generate_latest`` writes, from
per-snapshot caches), because a scrape after a collection must render every sample
again and tens of thousands of samples through prometheus_client take hundreds of ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor import __version__
from monitor.kernel.snapshot import MetricKind, MetricSpec, Sample, Snapshot
from monitor.kernel.snapshot_store import JobKey, SnapshotStore

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _family(spec: MetricSpec) -> Metric:
    names = list(spec.label_names)
    if spec.kind is MetricKind.COUNTER:
        return CounterMetricFamily(spec.name, spec.help, labels=names)
    if spec.kind is MetricKind.INFO:
        return InfoMetricFamily(spec.name.removesuffix("_info"), spec.help, labels=names)
    return GaugeMetricFamily(spec.name, spec.help, labels=names)


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

    def self_metrics(self) -> Iterator[Metric]:
        labels = ["collector", "target"]
        up = GaugeMetricFamily(
            "monitor_collector_up", "1 if the collector's last run succeeded, else 0", labels=labels
        )
        duration = GaugeMetricFamily(
            "monitor_collector_duration_seconds",
            "Duration of the collector's last run",
            labels=labels,
        )
        last = GaugeMetricFamily(
            "monitor_collector_last_success_timestamp_seconds",
            "Unix time of the collector's last successful run",
            labels=labels,
        )
        runs = CounterMetricFamily(
            "monitor_collector_runs",
            "Collector runs by outcome (success, error, timeout)",
            labels=[*labels, "status"],
        )
        for st in self._store.statuses():
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


class _SelfMetrics(Collector):
    def __init__(self, store_collector: StoreCollector) -> None:
        self._store_collector = store_collector

    def collect(self) -> Iterator[Metric]:
        yield from self._store_collector.self_metrics()


def _go_float(value: float) -> str:
    """``floatToGoString(value)``, with the common case inlined."""
    if math.isfinite(value):
        text = repr(value)
        if value <= 0 or text.find(".") <= 6:
            return text
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def _escape_label(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


_Chunk = tuple[str, str, set[tuple[str, ...]]]
"""One family's part of one snapshot: header, sample lines, label value tuples."""


class StoreText:
    """The store's samples in the Prometheus text format, as ``generate_latest`` writes
    them for :class:`StoreCollector` (labels sorted by name, Go float formatting, the
    first sample of a duplicate series wins), rebuilt only for snapshots that changed.
    """

    LABEL_CACHE_LIMIT = 500_000

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store
        self._chunks: dict[JobKey, tuple[Snapshot, dict[str, _Chunk], dict[int, str]]] = {}
        """Per job: its last snapshot (kept alive, so the ids below stay unique), that
        snapshot's text per family, and each sample's line by ``id(sample)``: a collector
        that hands back the same immutable Sample objects gets their lines for free."""
        self._label_order: dict[MetricSpec, tuple[tuple[int, str], ...]] = {}
        self._label_text: dict[tuple[str, tuple[str, ...]], str] = {}

    def render(self) -> str:
        families: dict[str, tuple[str, list[tuple[str, set[tuple[str, ...]], Snapshot]]]] = {}
        live: set[JobKey] = set()
        for snapshot in self._store.snapshots():
            key = (snapshot.collector, snapshot.target)
            live.add(key)
            cached = self._chunks.get(key)
            if cached is None or cached[0] is not snapshot:
                lines_by_id: dict[int, str] = {}
                previous = cached[2] if cached is not None else {}
                chunks = self._build(snapshot.samples, previous=previous, lines_by_id=lines_by_id)
                cached = self._chunks[key] = (snapshot, chunks, lines_by_id)
            for name, (header, lines, labelsets) in cached[1].items():
                entry = families.get(name)
                if entry is None:
                    families[name] = (header, [(lines, labelsets, snapshot)])
                else:
                    entry[1].append((lines, labelsets, snapshot))
        for key in [k for k in self._chunks if k not in live]:
            del self._chunks[key]
        if len(self._label_text) > self.LABEL_CACHE_LIMIT:
            self._label_text.clear()
        out: list[str] = []
        for name, (header, parts) in families.items():
            out.append(header)
            if len(parts) == 1:
                out.append(parts[0][0])
                continue
            seen: set[tuple[str, ...]] = set()
            for lines, labelsets, snapshot in parts:
                if seen.isdisjoint(labelsets):
                    out.append(lines)
                    seen |= labelsets
                else:  # the same series from two snapshots: the first one wins
                    samples = [s for s in snapshot.samples if s.spec.name == name]
                    out.append(self._build(samples, seen)[name][1])
        return "".join(out)

    def _build(
        self,
        samples: Iterable[Sample],
        seen: set[tuple[str, ...]] | None = None,
        *,
        previous: dict[int, str] | None = None,
        lines_by_id: dict[int, str] | None = None,
    ) -> dict[str, _Chunk]:
        chunks: dict[str, tuple[str, list[str], set[tuple[str, ...]]]] = {}
        previous = previous or {}
        for sample in samples:
            spec = sample.spec
            values = sample.label_values
            chunk = chunks.get(spec.name)
            if chunk is None:
                chunk = chunks[spec.name] = (_header(spec), [], seen if seen is not None else set())
            if values in chunk[2]:
                continue
            chunk[2].add(values)
            ident = id(sample)
            line = previous.get(ident)
            if line is None:
                line = self._line(sample)
            if lines_by_id is not None:
                lines_by_id[ident] = line
            chunk[1].append(line)
        return {name: (h, "".join(lines), sets) for name, (h, lines, sets) in chunks.items()}

    def _line(self, sample: Sample) -> str:
        spec, values = sample.spec, sample.label_values
        labels = self._label_text.get((spec.name, values))
        if labels is None:
            labels = self._label_text[(spec.name, values)] = self._labels(spec, values)
        if spec.kind is MetricKind.INFO:
            return f"{spec.name}{labels} 1.0\n"
        return f"{spec.name}{labels} {_go_float(sample.value)}\n"

    def _labels(self, spec: MetricSpec, values: tuple[str, ...]) -> str:
        order = self._label_order.get(spec)
        if order is None:
            names = spec.label_names
            order = self._label_order[spec] = tuple(
                sorted(((i, n) for i, n in enumerate(names)), key=lambda pair: pair[1])
            )
        return "{" + ",".join(f'{n}="{_escape_label(values[i])}"' for i, n in order) + "}"


def _header(spec: MetricSpec) -> str:
    kind = "counter" if spec.kind is MetricKind.COUNTER else "gauge"
    text = spec.help.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {spec.name} {text}\n# TYPE {spec.name} {kind}\n"


class Exposition:
    """The daemon's private registry and a per-generation cache of its rendered text."""

    def __init__(self, store: SnapshotStore, extra: Iterable[Collector] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        store_collector = StoreCollector(store)
        self.registry.register(store_collector)
        # the text format: self-metrics, the store's samples (StoreText), the extras
        self._self_registry = CollectorRegistry(auto_describe=False)
        self._self_registry.register(_SelfMetrics(store_collector))
        self._extra_registry = CollectorRegistry(auto_describe=False)
        self._store_text = StoreText(store)
        for collector in extra:
            self.register(collector)
        self._scraped = False
        self._render_pending = False
        store.on_change(self._render_soon)
        self._store = store
        self._cache: dict[bool, tuple[tuple[int, int], bytes]] = {}
        self.extra_generation = 0
        """Bumped by collectors registered here that change outside the store."""

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)
        self._extra_registry.register(collector)

    def _render_soon(self) -> None:
        """Once scrapes come in, render the text right after the store changes, on the
        event loop, so the next scrape finds it ready instead of building it."""
        if not self._scraped or self._render_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the next render() builds it
        self._render_pending = True
        loop.call_soon(self._prerender)

    def _prerender(self) -> None:
        self._render_pending = False
        with contextlib.suppress(Exception):  # a failing collector fails the scrape itself
            self._render(False)

    def render(self, openmetrics: bool = False) -> bytes:
        if not openmetrics:
            self._scraped = True
        return self._render(openmetrics)

    def _render(self, openmetrics: bool) -> bytes:
        # a snapshot going stale changes the count without a new generation
        generation = (self._store.generation + self.extra_generation, self._store.live_count())
        cached = self._cache.get(openmetrics)
        if cached is not None and cached[0] == generation:
            return cached[1]
        if openmetrics:
            body: bytes = generate_openmetrics(self.registry)  # type: ignore[no-untyped-call]
        else:
            body = (
                generate_latest(self._self_registry)
                + self._store_text.render().encode()
                + generate_latest(self._extra_registry)
            )
        self._cache[openmetrics] = (generation, body)
        return body

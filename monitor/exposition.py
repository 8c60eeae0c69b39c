"""Render the snapshot store for Prometheus, on a private registry, without I/O.

:class:`StoreCollector` is a custom collector (prometheus_client's pattern for proxied
state): on every scrape it turns the latest snapshots into metric families. It also
renders the daemon's own health::

    monitor_collector_up{collector="postgres",target="primary"} 1.0
    monitor_collector_duration_seconds{collector="postgres",target="primary"} 0.004
    monitor_collector_last_success_timestamp_seconds{collector="postgres",target="primary"} 1.7e9
    monitor_collector_runs_total{collector="postgres",target="primary",status="success"} 12.0

The rendered text is cached per store generation, so a scrape costs a dictionary lookup
until a collector stores something new.
"""

from __future__ import annotations

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

from monitor import __version__
from monitor.snapshot import MetricKind, MetricSpec
from monitor.store import SnapshotStore

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
        yield from self._self_metrics()
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

    def _self_metrics(self) -> Iterator[Metric]:
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


class Exposition:
    """The daemon's private registry and a per-generation cache of its rendered text."""

    def __init__(self, store: SnapshotStore, extra: Iterable[Collector] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(store))
        for collector in extra:
            self.registry.register(collector)
        self._store = store
        self._cache: dict[bool, tuple[tuple[int, int], bytes]] = {}
        self.extra_generation = 0
        """Bumped by collectors registered here that change outside the store."""

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self, openmetrics: bool = False) -> bytes:
        # a snapshot going stale changes the count without a new generation
        generation = (self._store.generation + self.extra_generation, self._store.live_count())
        cached = self._cache.get(openmetrics)
        if cached is not None and cached[0] == generation:
            return cached[1]
        body = (generate_openmetrics if openmetrics else generate_latest)(self.registry)
        self._cache[openmetrics] = (generation, body)
        return body

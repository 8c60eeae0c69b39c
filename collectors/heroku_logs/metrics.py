"""Render the drain's counters, histograms and gauges for Prometheus (a custom collector
on the daemon's registry, as the snapshot store has no histograms). Every series has an
``app`` label; see docs/heroku-log-drains.md for what each one means::

    heroku_router_requests_total{app="shop",method="GET",status_class="2xx",route="/"} 12
    heroku_router_service_seconds_bucket{app="shop",...,route="/",le="0.5"} 11
    heroku_router_errors_total{app="shop",code="H12"} 1
    heroku_dyno_memory_bytes{app="shop",process="web.1",kind="rss"} 3.1e8
    heroku_postgres_db_size_bytes{app="shop",source="DATABASE",addon="postgresql-curly-1"} 2.6e10
    heroku_release_info{app="shop",version="v123",commit="60a874b3"} 1
    heroku_drain_frames_total{app="shop",outcome="ok"} 120
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from collectors.heroku_logs.addons import LABELS as ADDON_LABELS
from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.histogram import Histogram
from collectors.heroku_logs.releases import ReleaseEvent

ADDON_HELP = {
    "heroku_postgres": "Heroku Postgres metric from its log line",
    "heroku_redis": "Heroku Data for Redis metric from its log line",
    "heroku_pgbouncer": "Heroku PgBouncer metric from its log line",
}


def _counter(name: str, help: str, labels: list[str], items: Iterable[tuple[Any, float]]) -> Metric:
    family = CounterMetricFamily(name, help, labels=labels)
    for key, value in sorted(items, key=lambda kv: kv[0]):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


def _gauge(name: str, help: str, labels: list[str], items: Iterable[tuple[Any, float]]) -> Metric:
    family = GaugeMetricFamily(name, help, labels=labels)
    for key, value in sorted(items, key=lambda kv: kv[0]):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


def _histograms(
    name: str, help: str, labels: list[str], items: Iterable[tuple[tuple[str, ...], Histogram]]
) -> Metric:
    family = HistogramMetricFamily(name, help, labels=labels)
    for key, histogram in sorted(items, key=lambda kv: kv[0]):
        if histogram.count:
            family.add_metric(list(key), histogram.cumulative(), histogram.sum)
    return family


class DrainCollector(Collector):
    def __init__(
        self,
        state: DrainState,
        latest_releases: Callable[[], dict[str, ReleaseEvent]],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._latest = latest_releases
        self._monotonic = monotonic

    def collect(self) -> Iterator[Metric]:
        s = self._state
        s.expire(self._monotonic())
        yield from self._drain(s)
        yield from self._router(s)
        yield from self._dynos(s)
        yield from self._addons(s)
        yield from self._platform(s)
        yield from self._app_metrics(s)

    def _drain(self, s: DrainState) -> Iterator[Metric]:
        yield _counter(
            "heroku_drain_requests",
            "Drain POSTs by outcome (accepted, duplicate, unauthorized, too_large, ...)",
            ["outcome"],
            s.requests.items(),
        )
        yield _counter(
            "heroku_drain_frames",
            "Logplex frames by framing outcome (ok, lenient, resynced, truncated, malformed, "
            "duplicate)",
            ["app", "outcome"],
            s.frames.items(),
        )
        yield _counter(
            "heroku_drain_lines",
            "Log lines by kind and outcome (parsed, ignored, malformed)",
            ["app", "kind", "outcome"],
            s.lines.items(),
        )
        yield _counter(
            "heroku_drain_undecodable_lines",
            "Lines that were not valid UTF-8 (parsed with replacement characters)",
            ["app"],
            s.undecodable.items(),
        )
        yield _counter(
            "heroku_drain_msg_count_mismatches",
            "Batches whose frame count differed from Logplex-Msg-Count",
            ["app"],
            s.count_mismatches.items(),
        )
        yield _gauge(
            "heroku_drain_last_batch_timestamp_seconds",
            "When the drain last accepted a batch for the app",
            ["app"],
            s.last_frame.items(),
        )
        dropped = GaugeMetricFamily(
            "heroku_drain_series_dropped",
            "Label sets refused because log_drain.max_series was reached",
        )
        dropped.add_metric([], s.series_dropped)
        yield dropped
        yield _counter(
            "heroku_logplex_dropped_messages",
            "Messages Logplex dropped before this drain (L10 notices)",
            ["app"],
            s.logplex_dropped.items(),
        )
        yield _counter(
            "heroku_logplex_errors",
            "Logplex L-code notices (L10 buffer overflow, ...)",
            ["app", "code"],
            s.logplex_errors.items(),
        )

    def _router(self, s: DrainState) -> Iterator[Metric]:
        labels = ["app", "method", "status_class", "route"]
        router = list(s.router.items())
        yield _counter(
            "heroku_router_requests",
            "Requests through the Heroku router",
            labels,
            ((k, v.requests) for k, v in router),
        )
        yield _counter(
            "heroku_router_response_bytes",
            "Bytes sent from dynos to clients (router bytes=)",
            labels,
            ((k, v.bytes) for k, v in router),
        )
        yield _histograms(
            "heroku_router_service_seconds",
            "Router service time: from the request to the dyno to the end of its response",
            labels,
            ((k, v.service) for k, v in router),
        )
        yield _histograms(
            "heroku_router_connect_seconds",
            "Router time to connect to the dyno",
            labels,
            ((k, v.connect) for k, v in router),
        )
        yield _counter(
            "heroku_router_errors",
            "Router error codes (H10 app crashed, H12 timeout, H13, H18, H27, ...)",
            ["app", "code"],
            s.router_errors.items(),
        )

    def _dynos(self, s: DrainState) -> Iterator[Metric]:
        memory = GaugeMetricFamily(
            "heroku_dyno_memory_bytes",
            "Dyno memory from runtime metrics (total = rss + cache + swap)",
            labels=["app", "process", "kind"],
        )
        quota = GaugeMetricFamily(
            "heroku_dyno_memory_quota_bytes",
            "Dyno memory quota (R14 above it, R15 far above)",
            labels=["app", "process"],
        )
        load = GaugeMetricFamily(
            "heroku_dyno_load_average",
            "Dyno load average (runnable tasks)",
            labels=["app", "process", "window"],
        )
        for (app, process), gauges in sorted(s.dyno_gauges.items()):
            for (what, sub), value in sorted(gauges.values.items()):
                if what == "memory":
                    memory.add_metric([app, process, sub], value)
                elif what == "quota":
                    quota.add_metric([app, process], value)
                else:
                    load.add_metric([app, process, sub], value)
        yield from (memory, quota, load)
        yield _counter(
            "heroku_dyno_memory_pages",
            "Pages paged in/out (cumulative per dyno instance; resets on restart)",
            ["app", "process", "direction"],
            s.dyno_pages.items(),
        )
        yield _counter(
            "heroku_dyno_errors",
            "Dyno R-codes (R10 boot timeout, R12 exit timeout, R14/R15 memory)",
            ["app", "process", "code"],
            s.dyno_errors.items(),
        )
        yield _counter(
            "heroku_dyno_state_changes",
            "Dyno state changes (to crashed: a crash)",
            ["app", "process", "from", "to"],
            s.state_changes.items(),
        )
        yield _counter(
            "heroku_dyno_exits",
            "Dyno process exits by status (143 SIGTERM, 137 SIGKILL)",
            ["app", "process", "status"],
            s.exits.items(),
        )
        yield _counter(
            "heroku_dyno_restarts",
            "Dyno restarts by reason (restarting, cycling: the daily restart)",
            ["app", "process", "reason"],
            s.restarts.items(),
        )
        boots = [((a, p), v) for (a, p, kind), (v, _) in s.boot_seconds.items() if kind == "boot"]
        restarts = [
            ((a, p), v) for (a, p, kind), (v, _) in s.boot_seconds.items() if kind == "restart"
        ]
        yield _gauge(
            "heroku_dyno_boot_seconds",
            "Last boot: from 'Starting process' to 'State changed from starting to up'",
            ["app", "process"],
            boots,
        )
        yield _gauge(
            "heroku_dyno_restart_seconds",
            "Last restart: from its first line (Restarting, Cycling, up to starting) to up",
            ["app", "process"],
            restarts,
        )

    def _addons(self, s: DrainState) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for (_, app, source, addon), gauges in sorted(s.addon_gauges.items()):
            for (name, extra), value in sorted(gauges.values.items()):
                family = families.get(name)
                extra_labels = list(ADDON_LABELS.get(name, ()))
                if family is None:
                    prefix = name.split("_", 2)
                    help_text = ADDON_HELP.get(f"{prefix[0]}_{prefix[1]}", "Heroku add-on metric")
                    family = families[name] = GaugeMetricFamily(
                        name, help_text, labels=["app", "source", "addon", *extra_labels]
                    )
                values = [app, source, addon] + ([extra] if extra_labels else [])
                family.add_metric(values, value)
        yield from families.values()

    def _platform(self, s: DrainState) -> Iterator[Metric]:
        latest = self._latest()
        info = GaugeMetricFamily(
            "heroku_release_info",
            "The app's current release (1); commit from its Deploy line, empty otherwise",
            labels=["app", "version", "commit"],
        )
        stamp = GaugeMetricFamily(
            "heroku_release_timestamp_seconds",
            "When the app's current release was created",
            labels=["app"],
        )
        version = GaugeMetricFamily(
            "heroku_release_version", "The app's current release number", labels=["app"]
        )
        for app, event in sorted(latest.items()):
            info.add_metric([app, f"v{event.version}", event.commit], 1)
            stamp.add_metric([app], event.released_at)
            version.add_metric([app], event.version)
        yield from (info, stamp, version)
        yield _counter(
            "heroku_platform_events",
            "Platform API events (release, deploy, config, rollback, scale, build_*)",
            ["app", "kind"],
            s.platform_events.items(),
        )

    def _app_metrics(self, s: DrainState) -> Iterator[Metric]:
        yield _counter(
            "heroku_app_count",
            "l2met count# values from the app's logs",
            ["app", "metric"],
            s.app_counts.items(),
        )
        yield _gauge(
            "heroku_app_sample",
            "l2met sample# values from the app's logs (in base units)",
            ["app", "metric", "unit"],
            ((k, v) for k, (v, _) in s.app_samples.items()),
        )
        yield _histograms(
            "heroku_app_measure",
            "l2met measure# values from the app's logs (in base units)",
            ["app", "metric", "unit"],
            s.app_measures.items(),
        )
        yield _counter(
            "heroku_app_metrics_dropped",
            "l2met values dropped (not_allowed, limit, invalid)",
            ["app", "reason"],
            s.app_dropped.items(),
        )

"""OpenMetrics from the fast path: byte for byte prometheus_client's generator, accepted
by prometheus_client's OpenMetrics parser for every metric the collectors export, with
``# UNIT`` where the name carries one and the components' collectors included."""

from __future__ import annotations

import importlib
import math
import pkgutil
import subprocess

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from support import require_binary

from monitor.kernel.exposition import Exposition
from monitor.kernel.loop_lag import lag_histogram
from monitor.kernel.snapshot import MetricSpec, Sample, Snapshot, counter, gauge, info
from monitor.kernel.snapshot_store import SnapshotStore
from monitor.kernel.store_text import unit_of

LAG = gauge("y_lag_seconds", 'lag with "quotes" and \\ backslash\nand a newline', "zeta", "alpha")
CALLS = counter("y_calls_total", "calls", "datname", "queryid")
EXEC = counter("y_exec_seconds_total", "time", "queryid")
HIT = gauge("y_hit_ratio", "ratio")
TEXT = info("y_query_info", "query", "queryid", "query")
VALUES = [0.0, -0.0, 1.0, -2.5, 1e-9, 123456.0, 1234567.0, 1e22, 2.0**63, math.inf, -math.inf,
          math.nan, 0.1 + 0.2, 7e6 + 0.5]  # fmt: skip


class Extra(Collector):
    def collect(self):  # type: ignore[no-untyped-def]
        family = GaugeMetricFamily("z_extra", "from a component", labels=["k"])
        family.add_metric(["v"], 3.0)
        yield family


def put(store: SnapshotStore, collector: str, target: str, samples: list[Sample]) -> None:
    store.put(Snapshot(collector, target, tuple(samples), True, 1.7e9, 0.01), "success", 10.0)


def test_same_bytes_as_prometheus_client_openmetrics() -> None:
    store = SnapshotStore()
    exposition = Exposition(store, [Extra()])
    a = [LAG(v, f"z{i}", 'a"b\\c\nd', target="a") for i, v in enumerate(VALUES)]
    a += [CALLS(i * 1.5, "app", str(-(10**18) + i), target="a") for i in range(50)]
    a += [EXEC(0.25, "1", target="a"), HIT(0.5, target="a")]
    a += [TEXT(1, "42", "SELECT 'x' FROM \"t\"", target="a")]
    a += [LAG(99, "z0", 'a"b\\c\nd', target="a")]  # duplicate within a snapshot
    put(store, "one", "a", a)
    put(store, "two", "b", [CALLS(5, "app", "7", target="b"), LAG(1, "q", "r", target="b")])
    put(store, "three", "b", [LAG(2, "q", "r", target="b"), LAG(3, "q2", "r", target="b")])
    body = exposition.render(openmetrics=True)
    assert body == generate_openmetrics(exposition.registry)
    text = body.decode()
    assert text.endswith("\n# EOF\n") and text.count("# EOF") == 1
    assert "# TYPE y_calls counter\n" in text and 'y_calls_total{datname="app",' in text
    assert "# UNIT y_exec_seconds seconds\n" in text
    assert "# UNIT y_hit_ratio ratio\n" in text
    assert "# UNIT y_lag_seconds seconds\n" in text
    assert "# TYPE y_query info\n" in text and "# UNIT y_query" not in text
    assert "# UNIT y_calls" not in text
    assert "# UNIT monitor_collector_duration_seconds seconds\n" in text
    assert " # {" not in text  # no exemplars
    # a changed snapshot is rebuilt, in both formats, from the shared sample lines
    put(store, "two", "b", [CALLS(6, "app", "7", target="b")])
    assert exposition.render(openmetrics=True) == generate_openmetrics(exposition.registry)
    assert b'y_calls_total{datname="app",queryid="7",target="b"} 6.0' in exposition.render()
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert parsed["y_exec_seconds"].type == "counter" and parsed["y_exec_seconds"].unit == "seconds"
    assert parsed["y_query"].type == "info"
    assert parsed["z_extra"].samples[0].value == 3.0


RULES_ONLY = {"monitor_collector_up", "monitor_receiver_up"}
"""Specs alerts.series builds for the rules from job statuses: never in the store."""


def all_specs() -> list[MetricSpec]:
    """Every metric spec the collectors, components and alerting declare."""
    specs: dict[str, MetricSpec] = {}
    for package in ("collectors", "monitor", "alerts"):
        root = importlib.import_module(package)
        for info_ in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info_.name.endswith("__main__"):
                continue
            module = importlib.import_module(info_.name)
            specs.update({v.name: v for v in vars(module).values() if isinstance(v, MetricSpec)})
    return sorted((s for s in specs.values() if s.name not in RULES_ONLY), key=lambda s: s.name)


def test_every_exported_metric_is_valid_openmetrics_and_text() -> None:
    specs = all_specs()
    assert len(specs) > 50
    store = SnapshotStore()
    samples = [spec(1.0, *(f"v{i}" for i in range(len(spec.labels))), target="t") for spec in specs]
    put(store, "all", "t", samples)
    exposition = Exposition(store, [lag_histogram()])
    om = exposition.render(openmetrics=True).decode()
    families = {f.name: f for f in text_string_to_metric_families(om)}  # raises if invalid
    for spec in specs:
        family = next(f for f in families.values() if any(s.name == spec.name for s in f.samples))
        assert family.unit == unit_of(spec)
        assert family.type == spec.kind.value
    assert families["monitor_event_loop_lag_seconds"].type == "histogram"
    assert families["monitor_event_loop_lag_seconds"].unit == "seconds"
    assert {s for s in specs if unit_of(s)}, "no family with a unit: the UNIT check is vacuous"
    # promtool lints the text format (it has no OpenMetrics parser): the same sample lines
    promtool = require_binary("promtool", "/usr/bin/promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition.render(),
        capture_output=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr.decode() + checked.stdout.decode()


def test_loop_lag_histogram_is_exposed_in_both_formats() -> None:
    store = SnapshotStore()
    exposition = Exposition(store)
    histogram: Histogram = lag_histogram()
    exposition.register(histogram)
    histogram.observe(0.003)
    text = exposition.render().decode()
    assert 'monitor_event_loop_lag_seconds_bucket{le="0.005"} 1.0' in text
    om = exposition.render(openmetrics=True).decode()
    lag = next(f for f in text_string_to_metric_families(om) if f.name.startswith("monitor_event"))
    assert lag.name == "monitor_event_loop_lag_seconds" and lag.unit == "seconds"
    assert any(s.name.endswith("_count") and s.value == 1.0 for s in lag.samples)

"""render_families writes prometheus_client's bytes, in both formats, for every family kind."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    StateSetMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar, Timestamp

from monitor.kernel import family_text
from monitor.kernel.family_text import render_families

HELP = 'help with "quotes", a \\ backslash\nand a newline'
ODD = 'a"b\\c\nd é'


class Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def instrumented() -> list[Metric]:
    """Families from prometheus_client's own instruments (with their _created samples)."""
    registry = CollectorRegistry(auto_describe=True)
    counter = Counter("c_requests", HELP, ["route", "code"], registry=registry)
    counter.labels(ODD, "200").inc(3)
    counter.labels("/b", "500").inc()
    gauge = Gauge("g_temperature_celsius", HELP, registry=registry, unit="celsius")
    gauge.set(-2.5)
    histogram = Histogram("h_lag_seconds", HELP, ["k"], registry=registry, buckets=(0.005, 1, 7e6))
    for v in (0.001, 0.5, 3.0, 1e9):
        histogram.labels("x").observe(v)
    summary = Summary("s_size_bytes", HELP, registry=registry)
    summary.observe(1234567.0)
    Info("i_build", HELP, registry=registry).info({"version": ODD, "commit": "abc"})
    Enum("e_state", HELP, states=["up", "down"], registry=registry).state("down")
    return list(registry.collect())


def custom() -> list[Metric]:
    values = [0.0, -0.0, 1, 7, -2.5, 1e-9, 123456.0, 1234567.0, 1e22, 2.0**63, math.inf,
              -math.inf, math.nan, 0.1 + 0.2]  # fmt: skip
    gauge = GaugeMetricFamily("g_values", HELP, labels=["z", "a"])
    for i, v in enumerate(values):
        gauge.add_metric([f"v{i}", ODD], v)
    counter = CounterMetricFamily("c_events", "", labels=["kind"], created=1.7e9)
    counter.add_metric(["x"], 5, created=1.7e9)
    gauge_histogram = GaugeHistogramMetricFamily(
        "gh_queue", HELP, buckets=[("1.0", 4), ("+Inf", 5)], gsum_value=12.0
    )
    states = StateSetMetricFamily("ss_mode", HELP, value={"a": True, "b": False})
    unknown = UnknownMetricFamily("u_thing", HELP, value=2.0)
    info = InfoMetricFamily("i_plain", HELP, value={"k": ODD})
    empty = GaugeMetricFamily("g_empty", "no samples", labels=["x"])
    return [gauge, counter, gauge_histogram, states, unknown, info, empty]


def unusual() -> list[Metric]:
    """Families the fast path hands to prometheus_client."""
    stamped = GaugeMetricFamily("g_stamped", HELP, labels=["x"])
    stamped.add_metric(["1"], 1.0, timestamp=1.5e9)
    stamped.add_metric(["2"], 2.0, timestamp=Timestamp(1, 5))
    exemplary = Metric("h_ex", HELP, "histogram")
    exemplary.add_sample("h_ex_bucket", {"le": "+Inf"}, 1.0, None, Exemplar({"trace": "t"}, 0.3))
    exemplary.add_sample("h_ex_count", {}, 1.0)
    exemplary.add_sample("h_ex_sum", {}, 0.3)
    colon = GaugeMetricFamily("job:rate:5m", HELP, value=3.0)
    return [stamped, exemplary, colon]


CASES = {"instrumented": instrumented, "custom": custom, "unusual": unusual}


@pytest.mark.parametrize("case", CASES)
def test_text_is_prometheus_clients(case: str) -> None:
    families = CASES[case]()
    assert render_families(families).encode() == generate_latest(Families(families))


@pytest.mark.parametrize("case", CASES)
def test_openmetrics_is_prometheus_clients(case: str) -> None:
    families = CASES[case]()
    expected = generate_openmetrics(Families(families))  # type: ignore[no-untyped-call]
    assert render_families(families, openmetrics=True).encode() + b"# EOF\n" == expected


def test_plain_families_skip_prometheus_client_and_unusual_ones_use_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed: list[str] = []
    original = family_text._by_prometheus_client

    def spy(family: Metric, openmetrics: bool) -> str:
        handed.append(family.name)
        return original(family, openmetrics)

    monkeypatch.setattr(family_text, "_by_prometheus_client", spy)
    render_families(instrumented() + custom() + unusual(), openmetrics=True)
    assert handed == ["g_stamped", "h_ex", "job:rate:5m"]

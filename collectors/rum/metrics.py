"""Render the beacon aggregates for Prometheus (a custom collector on the daemon's
registry; the snapshot store has no histograms).

Exposition (``target`` is ``rum.name``; ``le`` bounds include the configured
thresholds, so ``le="2.5"`` counts exactly the good LCPs)::

    webvitals_lcp_seconds_bucket{target="rum",route="/products/:id",le="2.5"} 940
    webvitals_lcp_seconds_sum{target="rum",route="/products/:id"} 1802.4
    webvitals_lcp_seconds_count{target="rum",route="/products/:id"} 1000
    webvitals_cls_bucket{target="rum",route="other",le="0.1"} 97
    webvitals_reports_total{target="rum",metric="lcp"} 1000
    webvitals_duplicates_total{target="rum",metric="cls"} 12
    webvitals_beacons_total{target="rum",outcome="accepted"} 800
    webvitals_rejected_total{target="rum",reason="origin_not_allowed"} 3
    webvitals_pending_reports{target="rum"} 4
    webvitals_tracked_ids{target="rum"} 950
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from collectors.rum.aggregate import Aggregator
from collectors.rum.endpoint import VitalsEndpoint
from collectors.web_vitals import VITAL_NAMES

HISTOGRAM_NAMES = {
    "lcp": "webvitals_lcp_seconds",
    "inp": "webvitals_inp_seconds",
    "cls": "webvitals_cls",
    "fcp": "webvitals_fcp_seconds",
    "ttfb": "webvitals_ttfb_seconds",
}
_HELP = {
    "lcp": "Largest Contentful Paint reported by browsers",
    "inp": "Interaction to Next Paint reported by browsers",
    "cls": "Cumulative Layout Shift reported by browsers",
    "fcp": "First Contentful Paint reported by browsers",
    "ttfb": "Time to First Byte reported by browsers",
}


class RumCollector(Collector):
    def __init__(self, target: str, aggregator: Aggregator, endpoint: VitalsEndpoint) -> None:
        self._target = target
        self._aggregator = aggregator
        self._endpoint = endpoint

    def collect(self) -> Iterator[Metric]:
        agg, t = self._aggregator, self._target
        for metric in VITAL_NAMES:
            family = HistogramMetricFamily(
                HISTOGRAM_NAMES[metric], _HELP[metric], labels=["target", "route"]
            )
            for (m, route), histogram in sorted(agg.histograms.items()):
                if m != metric:
                    continue
                les = [str(float(b)) for b in histogram.bounds] + ["+Inf"]
                buckets = list(zip(les, histogram.cumulative(), strict=True))
                family.add_metric([t, route], buckets, histogram.total)
            yield family
        reports = CounterMetricFamily(
            "webvitals_reports", "Metric reports accepted, by metric", labels=["target", "metric"]
        )
        duplicates = CounterMetricFamily(
            "webvitals_duplicates",
            "Repeated reports of an id dropped or superseding a pending value",
            labels=["target", "metric"],
        )
        capped = CounterMetricFamily(
            "webvitals_window_capped_reports",
            "Reports left out of the window's p75 because their client exceeded its share",
            labels=["target", "metric"],
        )
        for metric in VITAL_NAMES:
            reports.add_metric([t, metric], agg.accepted[metric])
            duplicates.add_metric([t, metric], agg.duplicates[metric])
            capped.add_metric([t, metric], agg.capped[metric])
        beacons = CounterMetricFamily(
            "webvitals_beacons", "Beacons by outcome", labels=["target", "outcome"]
        )
        for outcome in ("accepted", "rejected"):
            beacons.add_metric([t, outcome], self._endpoint.beacons[outcome])
        rejected = CounterMetricFamily(
            "webvitals_rejected",
            "Rejected beacons or metrics by reason",
            labels=["target", "reason"],
        )
        for reason, n in sorted(self._endpoint.rejected.items()):
            rejected.add_metric([t, reason], n)
        pending = GaugeMetricFamily(
            "webvitals_pending_reports", "CLS/INP reports waiting to settle", labels=["target"]
        )
        pending.add_metric([t], agg.pending)
        tracked = GaugeMetricFamily(
            "webvitals_tracked_ids", "Counted ids remembered for de-duplication", labels=["target"]
        )
        tracked.add_metric([t], agg.tracked)
        yield from (reports, duplicates, capped, beacons, rejected, pending, tracked)

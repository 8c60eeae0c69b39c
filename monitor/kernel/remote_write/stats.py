"""The push's own health, on the daemon's registry (so it is scraped *and* pushed)::

monitor_remote_write_samples_total{status="sent"} 120540.0
monitor_remote_write_samples_total{status="rejected"} 0.0
monitor_remote_write_dropped_samples_total 0.0
monitor_remote_write_requests_total{status="sent"} 61.0
monitor_remote_write_requests_total{status="retry"} 3.0
monitor_remote_write_requests_total{status="rejected"} 0.0
monitor_remote_write_sent_bytes_total 1.1e+06
monitor_remote_write_queue_samples 0.0
monitor_remote_write_queue_max_samples 500000.0
monitor_remote_write_series 1976.0
monitor_remote_write_last_success_timestamp_seconds 1.7e+09
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.kernel.remote_write.client import Outcome

STATUSES = tuple(o.value for o in Outcome)


@dataclass(slots=True)
class PushStats:
    samples: dict[str, int] = field(default_factory=lambda: {"sent": 0, "rejected": 0})
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    dropped: int = 0
    sent_bytes: int = 0
    last_success: float = 0.0


class PushStatsCollector(Collector):
    def __init__(
        self,
        stats: PushStats,
        queued: Callable[[], int],
        queue_max: int,
        series: Callable[[], int],
    ) -> None:
        self._stats = stats
        self._queued = queued
        self._queue_max = queue_max
        self._series = series

    def collect(self) -> Iterator[Metric]:
        st = self._stats
        samples = CounterMetricFamily(
            "monitor_remote_write_samples",
            "Samples that left the push queue: sent (accepted) or rejected by the receiver",
            labels=["status"],
        )
        for status, count in st.samples.items():
            samples.add_metric([status], count)
        requests = CounterMetricFamily(
            "monitor_remote_write_requests",
            "remote_write requests by outcome: sent, retry (will be retried), rejected",
            labels=["status"],
        )
        for status, count in st.requests.items():
            requests.add_metric([status], count)
        yield samples
        yield requests
        yield CounterMetricFamily(
            "monitor_remote_write_dropped_samples",
            "Samples dropped unsent, oldest first, because the push queue was full",
            value=st.dropped,
        )
        yield CounterMetricFamily(
            "monitor_remote_write_sent_bytes",
            "Compressed request bytes accepted by the receiver",
            value=st.sent_bytes,
        )
        yield GaugeMetricFamily(
            "monitor_remote_write_queue_samples",
            "Samples waiting to be pushed (including the request in flight)",
            value=self._queued(),
        )
        yield GaugeMetricFamily(
            "monitor_remote_write_queue_max_samples",
            "The push queue's bound (remote_write.max_queue_samples)",
            value=self._queue_max,
        )
        yield GaugeMetricFamily(
            "monitor_remote_write_series",
            "Series in the latest collection pushed",
            value=self._series(),
        )
        yield GaugeMetricFamily(
            "monitor_remote_write_last_success_timestamp_seconds",
            "Unix time of the last accepted push (0 before the first)",
            value=st.last_success,
        )

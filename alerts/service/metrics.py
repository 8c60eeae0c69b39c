"""The alerting self-metrics::

    monitor_alerts{state="firing",severity="critical"} 1.0
    monitor_notifications_total{receiver="team",status="success"} 3.0
    monitor_outbox_pending 0.0
    monitor_notification_latency_seconds_bucket{receiver="team",le="0.5"} 3.0
    monitor_receiver_up{receiver="team"} 1.0
    monitor_alerting_leader 1.0
    monitor_rule_evaluation_seconds 0.004
    monitor_rule_evaluations_total 1520.0
    monitor_alert_state_errors_total 0.0
    monitor_silences{source="runtime"} 1.0

``status`` is one of success, retry, permanent_error, silenced, dropped. Latency runs
from queueing a notification to the receiver accepting it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.instance import State
from alerts.notify.coordinator import AlertEngine

SEVERITIES = ("critical", "warning", "info")
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class AlertMetrics(Collector):
    def __init__(self, engine: AlertEngine) -> None:
        self._engine = engine
        self._latency = Histogram(
            "monitor_notification_latency_seconds",
            "Time from queueing a notification to the receiver accepting it",
            ["receiver"],
            registry=None,
            buckets=LATENCY_BUCKETS,
        )

    def collect(self) -> Iterator[Metric]:
        engine = self._engine
        alerts = GaugeMetricFamily(
            "monitor_alerts", "Alert instances by state and severity", labels=["state", "severity"]
        )
        counts = {(s, v): 0 for s in (State.PENDING, State.FIRING) for v in SEVERITIES}
        for instance in engine.state.instances.values():
            key = (instance.state, instance.severity)
            counts[key] = counts.get(key, 0) + 1
        for (state, severity), count in sorted(counts.items()):
            alerts.add_metric([state.value, severity], count)
        yield alerts
        notifications = CounterMetricFamily(
            "monitor_notifications",
            "Notification attempts by receiver and outcome",
            labels=["receiver", "status"],
        )
        for (receiver, status), count in sorted(engine.counters.notifications.items()):
            notifications.add_metric([receiver, status], count)
        yield notifications
        yield GaugeMetricFamily(
            "monitor_outbox_pending",
            "Notifications queued for delivery (including those waiting to retry)",
            value=engine.pending_count(),
        )
        latencies, engine.counters.latencies = engine.counters.latencies, []
        for receiver, seconds in latencies:
            self._latency.labels(receiver).observe(seconds)
        yield from self._latency.collect()
        up = GaugeMetricFamily(
            "monitor_receiver_up",
            "0 while the receiver is marked broken, else 1",
            labels=["receiver"],
        )
        for name, ok in sorted(engine.receivers_up().items()):
            up.add_metric([name], 1 if ok else 0)
        yield up
        yield GaugeMetricFamily(
            "monitor_alerting_leader",
            "1 if this daemon delivers notifications (holds the leader lock)",
            value=1 if engine.leader else 0,
        )
        yield GaugeMetricFamily(
            "monitor_rule_evaluation_seconds",
            "Duration of the last rule evaluation",
            value=engine.counters.last_eval_seconds,
        )
        yield CounterMetricFamily(
            "monitor_rule_evaluations",
            "Rule evaluations (at most one a second, after collections)",
            value=engine.counters.evaluations,
        )
        silences = GaugeMetricFamily(
            "monitor_silences", "Silences in force now, by source", labels=["source"]
        )
        for source, count in sorted(engine.silences.active_counts(time.time()).items()):
            silences.add_metric([source], count)
        yield silences
        yield CounterMetricFamily(
            "monitor_alert_state_errors",
            "Failed writes to the alert state store",
            value=engine.counters.statedb_errors,
        )

"""HTTP uptime probes with an availability SLO: one :class:`HttpProbeSource` per target.

Exposition (names as blackbox_exporter's where one exists)::

    probe_success{target="home"} 1
    probe_duration_seconds{target="home"} 0.084
    probe_http_status_code{target="home"} 200
    probe_http_duration_seconds{target="home",phase="connect"} 0.003
    probe_http_redirects{target="home"} 1
    probe_http_ssl{target="home"} 1
    probe_ssl_earliest_cert_expiry{target="home"} 1.79e9
    probe_tls_cert_expiry_seconds{target="home"} 7.7e6
    probe_failures_total{target="home",reason="timeout"} 2
    probe_slo_objective_ratio{target="home"} 0.999
    probe_slo_window_samples{target="home",window="1h"} 120
    probe_slo_error_budget_burn_rate{target="home",window="1h"} 8.3
    probe_slo_burn_alert{target="home",severity="page",windows="1h/5m"} 0
    probe_slo_burning{target="home",urgency="page"} 0
    probe_slo_error_budget_remaining_ratio{target="home"} 0.97
    probe_slo_observed_seconds{target="home"} 86400

A failed probe is data (``probe_success 0``), not a failed collection. The SLO figures
come from the results this process has seen: a restart forgets everything before it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence

import httpx

from collectors.http_probe.config import HttpProbeTarget
from collectors.http_probe.probe import ProbeResult, build_client, probe
from collectors.http_probe.slo import ALERTS, SloTracker, window_label
from monitor.kernel.snapshot import Sample, counter, gauge
from monitor.kernel.source import CheckResult, CollectorJob, Source

PROBE_SUCCESS = gauge("probe_success", "1 if the last probe succeeded, else 0")
PROBE_DURATION = gauge("probe_duration_seconds", "Duration of the last probe")
PROBE_STATUS = gauge("probe_http_status_code", "HTTP status of the final answer (0: none)")
PROBE_PHASE = gauge(
    "probe_http_duration_seconds",
    "Duration of the last probe by phase, summed over redirects (connect includes DNS)",
    "phase",
)
PROBE_REDIRECTS = gauge("probe_http_redirects", "Redirects followed by the last probe")
PROBE_SSL = gauge("probe_http_ssl", "1 if the final answer came over TLS")
PROBE_CERT_EXPIRY = gauge(
    "probe_ssl_earliest_cert_expiry", "notAfter of the server's certificate (Unix time)"
)
PROBE_CERT_SECONDS = gauge(
    "probe_tls_cert_expiry_seconds", "Seconds until the server's certificate expires"
)
PROBE_FAILURES = counter("probe_failures_total", "Failed probes by reason", "reason")
SLO_OBJECTIVE = gauge("probe_slo_objective_ratio", "Availability objective of the probe")
SLO_SAMPLES = gauge(
    "probe_slo_window_samples", "Probe results in the window (since start)", "window"
)
SLO_BURN = gauge(
    "probe_slo_error_budget_burn_rate",
    "Error ratio over the window divided by the error budget (1 - objective)",
    "window",
)
SLO_ALERT = gauge(
    "probe_slo_burn_alert",
    "1 if both windows burn faster than the multi-window threshold",
    "severity",
    "windows",
)
SLO_BURNING = gauge(
    "probe_slo_burning",
    "1 if any window pair of this urgency burns over its threshold (one series to alert on)",
    "urgency",
)
SLO_BUDGET = gauge(
    "probe_slo_error_budget_remaining_ratio",
    "Share of the SLO window's error budget left, counting failures since start",
)
SLO_OBSERVED = gauge(
    "probe_slo_observed_seconds", "How much of the SLO window this process has observed"
)


class ProbeJob(CollectorJob):
    collector = "http_probe"

    def __init__(
        self,
        target: HttpProbeTarget,
        interval: float,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target
        self.target = target.name
        self.interval = interval
        self.timeout = target.timeout + 2.0  # the probe enforces its own deadline first
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._client: httpx.AsyncClient | None = None
        self._failures: Counter[str] = Counter()
        slo = target.slo
        self._slo = (
            None
            if slo is None
            else SloTracker(slo.objective, slo.window, slo.min_samples, interval, monotonic())
        )

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = build_client(self._target)
        return self._client

    async def collect(self) -> Sequence[Sample]:
        result = await probe(self.client(), self._target)
        if result.reason is not None:
            self._failures[result.reason] += 1
        if self._slo is not None:
            self._slo.record(self._monotonic(), result.success)
        return self._samples(result)

    def _samples(self, result: ProbeResult) -> list[Sample]:
        t = self.target
        out = [
            PROBE_SUCCESS(1 if result.success else 0, target=t),
            PROBE_DURATION(result.duration, target=t),
            PROBE_STATUS(result.status, target=t),
            PROBE_REDIRECTS(result.redirects, target=t),
            PROBE_SSL(1 if result.tls else 0, target=t),
        ]
        out.extend(PROBE_PHASE(v, phase, target=t) for phase, v in sorted(result.phases.items()))
        if result.cert_not_after is not None:
            expiry = result.cert_not_after.timestamp()
            out.append(PROBE_CERT_EXPIRY(expiry, target=t))
            out.append(PROBE_CERT_SECONDS(expiry - self._wall_clock(), target=t))
        out.extend(PROBE_FAILURES(n, r, target=t) for r, n in sorted(self._failures.items()))
        out.extend(self._slo_samples())
        return out

    def _slo_samples(self) -> list[Sample]:
        if self._slo is None:
            return []
        t = self.target
        status = self._slo.status(self._monotonic())
        out = [
            SLO_OBJECTIVE(self._slo.objective, target=t),
            SLO_BUDGET(status.budget_remaining, target=t),
            SLO_OBSERVED(status.observed, target=t),
        ]
        for window, n in status.samples.items():
            out.append(SLO_SAMPLES(n, window_label(window), target=t))
        for window, rate in status.burn_rates.items():
            out.append(SLO_BURN(rate, window_label(window), target=t))
        burning: dict[str, bool] = {}
        for alert in ALERTS:
            if alert in status.alerts:
                firing = status.alerts[alert]
                out.append(SLO_ALERT(firing, alert.severity, alert.label, target=t))
                burning[alert.severity] = burning.get(alert.severity, False) or firing
        # one series per urgency, so one outage is one alert, not one per window pair
        out.extend(SLO_BURNING(v, urgency, target=t) for urgency, v in burning.items())
        return out

    def failure_samples(self) -> Sequence[Sample]:
        """Only reached if the probe overran its own deadline (it never raises)."""
        self._failures["timeout"] += 1
        return self._samples(ProbeResult(False, self._target.timeout, reason="timeout"))

    def on_timeout(self) -> None:
        if self._slo is not None:
            self._slo.record(self._monotonic(), False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class HttpProbeSource(Source):
    kind = "http"

    def __init__(self, target: HttpProbeTarget, default_interval: float) -> None:
        self.name = target.name
        self.target = target
        self.job = ProbeJob(target, target.interval or default_interval)

    def jobs(self) -> Sequence[CollectorJob]:
        return [self.job]

    async def check(self) -> CheckResult:
        item = f"http/{self.name}"
        async with build_client(self.target) as client:
            result = await probe(client, self.target)
        detail = f"HTTP {result.status} in {result.duration * 1000:.0f} ms"
        if result.cert_not_after is not None:
            days = (result.cert_not_after.timestamp() - time.time()) / 86400
            detail += f", certificate expires in {days:.1f} days"
        if not result.success:
            return CheckResult(item, False, f"{result.reason}: {result.detail or detail}")
        return CheckResult(item, True, detail)

    async def close(self) -> None:
        await self.job.close()


def sources(targets: Sequence[HttpProbeTarget], interval: float) -> list[Source]:
    return [HttpProbeSource(t, interval) for t in targets]

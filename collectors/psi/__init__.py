"""PageSpeed Insights v5 lab data: one :class:`PsiSource` per configured URL.

Exposition (``target`` is the URL; a run per strategy, a few times a day)::

    psi_lab_seconds{target="https://example.com/",strategy="mobile",metric="lcp"} 2.4
    psi_lab_cls{target="https://example.com/",strategy="mobile"} 0.0006
    psi_performance_score{target="https://example.com/",strategy="mobile"} 0.85
    psi_last_success_timestamp_seconds{target="https://example.com/",strategy="mobile"} 1.77e9
    psi_run_duration_seconds{target="https://example.com/",strategy="mobile"} 22.4
    psi_runs_total{target="https://example.com/",strategy="mobile"} 3
    psi_run_errors_total{target="https://example.com/",strategy="mobile",reason="timeout"} 1

``metric`` is one of lcp, fcp, tbt, speed_index, ttfb (server-response-time), tti. A
failed run (timeout, 429, 5xx, a Lighthouse ``runtimeError``) counts in
``psi_run_errors_total`` by reason and leaves the last good values in place, dated by
``psi_last_success_timestamp_seconds``. Runs happen on the scheduler, never on a scrape.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence

import httpx

from collectors.google_api import (
    Backoff,
    GoogleApiError,
    error_from_response,
    json_body,
    send_with_backoff,
)
from collectors.psi.config import PsiConfig
from collectors.psi.lighthouse import LighthouseError, parse_lab
from collectors.web_vitals import Strategy
from monitor.kernel.snapshot import Sample, counter, gauge
from monitor.kernel.source import CheckResult, CollectorJob, Source

PSI_LAB_SECONDS = gauge(
    "psi_lab_seconds", "Lighthouse lab timing of the last good run", "strategy", "metric"
)
PSI_LAB_CLS = gauge("psi_lab_cls", "Lighthouse lab CLS of the last good run", "strategy")
PSI_SCORE = gauge(
    "psi_performance_score", "Lighthouse performance score (0..1) of the last good run", "strategy"
)
PSI_LAST_SUCCESS = gauge(
    "psi_last_success_timestamp_seconds", "When the exported lab values were measured", "strategy"
)
PSI_DURATION = gauge("psi_run_duration_seconds", "Duration of the last run", "strategy")
PSI_RUNS = counter("psi_runs_total", "PageSpeed Insights runs started", "strategy")
PSI_ERRORS = counter(
    "psi_run_errors_total", "Failed PageSpeed Insights runs by reason", "strategy", "reason"
)

RUNTIME_ERROR = "runtime_error"
"""Reason of a run Lighthouse reported as failed; the other reasons are
:data:`collectors.google_api.OUTCOMES`."""
JOB_MARGIN = 5.0
"""The job's deadline exceeds the request timeout, so a slow run is counted here."""


class PsiRunError(Exception):
    """Some strategies failed; the message names them (redacted)."""


class PsiJob(CollectorJob):
    collector = "psi"

    def __init__(
        self, config: PsiConfig, url: str, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self._config = config
        self.target = url
        self.interval = config.interval
        self.timeout = config.timeout + JOB_MARGIN
        self._wall_clock = wall_clock
        self._http: httpx.AsyncClient | None = None
        self._good: dict[Strategy, tuple[Sample, ...]] = {}
        self._durations: dict[Strategy, float] = {}
        self._runs: Counter[Strategy] = Counter()
        self._errors: Counter[tuple[Strategy, str]] = Counter()
        self._in_flight: set[Strategy] = set()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self._config.timeout,
                headers={"User-Agent": "app-monitor (PSI collector)"},
            )
        return self._http

    async def collect(self) -> Sequence[Sample]:
        results = await asyncio.gather(*(self._run(s) for s in self._config.strategies))
        errors = [e for e in results if e is not None]
        if errors:
            raise PsiRunError("; ".join(errors))
        return self.current_samples()

    async def _run(self, strategy: Strategy) -> str | None:
        self._runs[strategy] += 1
        self._in_flight.add(strategy)  # left there if cancelled: on_timeout counts it
        started = time.monotonic()
        try:
            samples = await self._measure(strategy)
        except (GoogleApiError, LighthouseError) as exc:
            reason = exc.outcome if isinstance(exc, GoogleApiError) else RUNTIME_ERROR
            self._errors[(strategy, reason)] += 1
            return f"{strategy}: {exc}"
        else:
            self._good[strategy] = samples
            return None
        finally:
            self._durations[strategy] = time.monotonic() - started
            task = asyncio.current_task()
            if task is None or not task.cancelling():
                self._in_flight.discard(strategy)

    async def _measure(self, strategy: Strategy) -> tuple[Sample, ...]:
        params = {
            "url": self.target,
            "strategy": strategy,
            "category": "performance",
            "key": self._config.api_key.get_secret_value(),
        }
        endpoint = f"{self._config.endpoint.rstrip('/')}/runPagespeed"
        client = self._client()
        response = await send_with_backoff(
            lambda: client.get(endpoint, params=params),
            max_retries=0,  # a few runs a day: a 429 waits for the next one
            deadline=0.0,
            backoff=Backoff(),
            attempt_timeout=self._config.timeout,
        )
        if response.status_code != 200:
            raise error_from_response(response)
        lab = parse_lab(json_body(response))
        t = self.target
        out = [PSI_LAB_SECONDS(v, strategy, m, target=t) for m, v in sorted(lab.timings.items())]
        if lab.cls is not None:
            out.append(PSI_LAB_CLS(lab.cls, strategy, target=t))
        if lab.score is not None:
            out.append(PSI_SCORE(lab.score, strategy, target=t))
        out.append(PSI_LAST_SUCCESS(self._wall_clock(), strategy, target=t))
        return tuple(out)

    def on_timeout(self) -> None:
        for strategy in self._in_flight:
            self._errors[(strategy, "timeout")] += 1
        self._in_flight.clear()

    def failure_samples(self) -> Sequence[Sample]:
        return self.current_samples()

    def current_samples(self) -> list[Sample]:
        t = self.target
        out = [s for samples in self._good.values() for s in samples]
        out.extend(PSI_DURATION(d, s, target=t) for s, d in self._durations.items())
        out.extend(PSI_RUNS(n, s, target=t) for s, n in self._runs.items())
        out.extend(PSI_ERRORS(n, s, r, target=t) for (s, r), n in sorted(self._errors.items()))
        return out

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


class PsiSource(Source):
    kind = "psi"

    def __init__(self, config: PsiConfig, url: str) -> None:
        self.name = url
        self.config = config
        self.job = PsiJob(config, url)

    def jobs(self) -> Sequence[CollectorJob]:
        return [self.job]

    async def check(self) -> CheckResult:
        strategies = ", ".join(self.config.strategies)
        return CheckResult(
            f"psi/{self.name}",
            True,
            f"configured ({strategies}); not run by check: a Lighthouse run takes 10-40 s",
        )

    async def close(self) -> None:
        await self.job.close()


def sources(psi: PsiConfig | None, interval: float) -> list[Source]:
    """PSI keeps its own interval (a Lighthouse run is slow); ``interval`` is unused."""
    if psi is None:
        return []
    return [PsiSource(psi, url) for url in psi.urls]

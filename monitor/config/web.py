"""Configuration of Core Web Vitals sources (CrUX, PSI, browser beacons) and HTTP probes.

Thresholds default to the web-vitals library's (``src/on*.ts``): a value at or below
``good`` is good, at or below ``poor`` needs improvement, above ``poor`` is poor.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from monitor.config.types import Duration, HttpUrl, Model, Name

VitalName = Literal["lcp", "inp", "cls", "fcp", "ttfb"]
VITAL_NAMES: tuple[VitalName, ...] = ("lcp", "inp", "cls", "fcp", "ttfb")
Rating = Literal["good", "needs-improvement", "poor"]
RATINGS: tuple[Rating, ...] = ("good", "needs-improvement", "poor")
FormFactor = Literal["PHONE", "DESKTOP", "TABLET"]
Strategy = Literal["mobile", "desktop"]


class Threshold(Model):
    """Upper bounds of "good" and "needs improvement" in base units."""

    good: float
    poor: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not 0 < self.good < self.poor:
            raise ValueError(f"need 0 < good < poor, got good={self.good:g} poor={self.poor:g}")
        return self

    def rate(self, value: float) -> Rating:
        """The web-vitals rating rule (``bindReporter.ts``)."""
        if value <= self.good:
            return "good"
        if value <= self.poor:
            return "needs-improvement"
        return "poor"


class TimingThreshold(Threshold):
    """A timing metric's thresholds, written as durations (``2500ms``, ``4s``)."""

    good: Duration
    poor: Duration


def _timing(good: str, poor: str) -> TimingThreshold:
    return TimingThreshold.model_validate({"good": good, "poor": poor})


class VitalsThresholds(Model):
    """Per-metric thresholds; CLS is unitless, the others are durations."""

    lcp: TimingThreshold = Field(default_factory=lambda: _timing("2500ms", "4000ms"))
    inp: TimingThreshold = Field(default_factory=lambda: _timing("200ms", "500ms"))
    cls: Threshold = Field(default_factory=lambda: Threshold(good=0.1, poor=0.25))
    fcp: TimingThreshold = Field(default_factory=lambda: _timing("1800ms", "3000ms"))
    ttfb: TimingThreshold = Field(default_factory=lambda: _timing("800ms", "1800ms"))

    def of(self, metric: VitalName) -> Threshold:
        threshold: Threshold = getattr(self, metric)
        return threshold


def _origin(value: str) -> str:
    """``scheme://host[:port]``: CrUX keys origins without a path (a trailing / is dropped)."""
    parts = urlsplit(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"an origin has no path or query: use {parts.scheme}://{parts.netloc}")
    return f"{parts.scheme}://{parts.netloc}".lower()


Origin = Annotated[HttpUrl, AfterValidator(_origin)]


class CruxConfig(Model):
    """Chrome UX Report API: field data per origin and URL, per form factor."""

    api_key: SecretStr
    origins: tuple[Origin, ...] = ()
    urls: tuple[HttpUrl, ...] = ()
    form_factors: tuple[FormFactor, ...] = ("PHONE", "DESKTOP")
    endpoint: HttpUrl = "https://chromeuxreport.googleapis.com/v1"
    interval: Duration = 3600.0
    """How often to ask; the data changes once a day, so once it changed today the
    daily job waits for the next UTC day."""
    timeout: Duration = 30.0
    """Deadline of one run (all form factors of one origin, retries included)."""
    request_timeout: Duration = 10.0
    max_retries: int = Field(default=3, ge=0, le=10)
    """Retries of a 429 answer within one run, with jittered exponential backoff."""
    history: bool = True
    """Also read the weekly History API series."""
    history_interval: Duration = 21600.0
    history_periods: int = Field(default=25, ge=1, le=40)
    compare_weeks: tuple[int, ...] = (1, 4)
    """p75 now against that many weekly periods ago (``crux_p75_change_ratio``)."""
    thresholds: VitalsThresholds = Field(default_factory=VitalsThresholds)

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if not self.origins and not self.urls:
            raise ValueError("give at least one origin or url")
        if self.interval < 600:
            raise ValueError("interval below 10m: CrUX data changes once a day")
        if not self.form_factors:
            raise ValueError("form_factors: give at least one of PHONE, DESKTOP, TABLET")
        if any(not 1 <= w < self.history_periods for w in self.compare_weeks):
            raise ValueError(f"compare_weeks must be between 1 and {self.history_periods - 1}")
        return self


class PsiConfig(Model):
    """PageSpeed Insights v5: lab data, a few runs a day per URL and strategy."""

    api_key: SecretStr
    """Required: keyless calls share one quota with every other keyless caller."""
    urls: tuple[HttpUrl, ...]
    strategies: tuple[Strategy, ...] = ("mobile", "desktop")
    endpoint: HttpUrl = "https://www.googleapis.com/pagespeedonline/v5"
    interval: Duration = 21600.0
    timeout: Duration = 90.0

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if not self.urls:
            raise ValueError("urls: give at least one URL")
        if not self.strategies:
            raise ValueError("strategies: give mobile, desktop or both")
        if self.timeout < 60:
            raise ValueError("timeout below 60s: a Lighthouse run takes 10-40 s, often more")
        if self.interval < 1800:
            raise ValueError("interval below 30m: PSI runs are slow and quota-limited")
        return self


_ROUTE = re.compile(r"^/(?:[A-Za-z0-9._~!$&'()+,;=@%\-]+|:[A-Za-z_]\w*|\*\w*|/)*$")


def _route_pattern(value: str) -> str:
    if not _ROUTE.match(value) or "//" in value:
        raise ValueError(
            f"invalid route pattern {value!r}: a path like /products/:id or /docs/*path"
        )
    return value


def _allowed_origin(value: str) -> str:
    m = re.fullmatch(r"(https?)://(\*\.)?([a-z0-9.\-]+)(:\d{1,5})?/?", value.lower())
    if not m:
        raise ValueError(
            f"invalid origin {value!r}: use scheme://host[:port], optionally https://*.example.com"
        )
    return value.lower().rstrip("/")


class RateLimit(Model):
    """A token bucket per client address."""

    per_second: float = Field(default=20.0, gt=0)
    burst: int = Field(default=100, ge=1)
    max_clients: int = Field(default=10000, ge=1)
    """Buckets kept; the least recently seen client is forgotten beyond this."""


class RumConfig(Model):
    """Browser beacons from the web-vitals library on ``POST /vitals``."""

    name: Name = "rum"
    """The ``target`` label of the webvitals_* series."""
    allowed_origins: tuple[Annotated[str, AfterValidator(_allowed_origin)], ...]
    routes: tuple[Annotated[str, AfterValidator(_route_pattern)], ...] = ()
    """Path patterns (``/products/:id``, ``/docs/*rest``); the route label is the first
    that matches the page's path, else ``other``."""
    max_body_bytes: int = Field(default=65536, ge=256, le=1048576)
    max_metrics_per_beacon: int = Field(default=20, ge=1, le=1000)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5)
    """Proxies in front of the daemon that append to X-Forwarded-For (1 on Heroku)."""
    settle: Duration = 60.0
    """CLS and INP are reported again as they grow: wait this long after the first
    report of an id, keeping the latest value, before counting it."""
    dedupe_window: Duration = 1800.0
    """How long a counted id is remembered to drop repeated reports."""
    max_tracked_ids: int = Field(default=100_000, ge=100)
    check_rating: bool = True
    """Reject a beacon whose ``rating`` contradicts its value under the web-vitals
    library's own thresholds (a forged or corrupted report)."""
    thresholds: VitalsThresholds = Field(default_factory=VitalsThresholds)
    window: Duration = 300.0
    """The span of the ``webvitals_window_*`` series the Rum* rules watch."""
    min_reports: int = Field(default=50, ge=1)
    """Fewest reports of a metric on a route in the window before its p75 and ratios
    are exported: a handful of page views is no basis for a page."""

    @field_validator("window")
    @classmethod
    def _window_range(cls, value: float) -> float:
        if not 60 <= value <= 3600:
            raise ValueError("give a window from 1m to 1h")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _some_origin(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one origin allowed to send beacons")
        return value


class ProbeSlo(Model):
    """An availability objective for one probe, with multi-window burn rates."""

    objective: float = Field(default=0.999, gt=0, lt=1)
    window: Duration = 2592000.0
    min_samples: int = Field(default=5, ge=1)
    """Fewest probe results a window needs before its burn rate is reported."""


class HttpProbeTarget(Model):
    """An HTTP uptime probe."""

    name: Name
    url: HttpUrl
    method: Literal["GET", "HEAD"] = "GET"
    interval: Duration | None = None
    timeout: Duration = 5.0
    max_redirects: int = Field(default=5, ge=0, le=30)
    """Redirects followed; 0 means the first answer is final."""
    expected_status: tuple[int, ...] = ()
    """Status codes that count as success; any 2xx when empty."""
    body_contains: str | None = None
    max_body_bytes: int = Field(default=1048576, ge=1)
    tls_verify: bool = True
    ca_file: str | None = None
    """PEM bundle to verify the server with instead of the system's."""
    slo: ProbeSlo | None = Field(default_factory=ProbeSlo)

    @field_validator("expected_status")
    @classmethod
    def _statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [s for s in value if not 100 <= s <= 599]
        if bad:
            raise ValueError(f"not HTTP status codes: {bad}")
        return value

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if self.body_contains is not None and self.method == "HEAD":
            raise ValueError("body_contains needs method GET (a HEAD answer has no body)")
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise ValueError(f"ca_file {self.ca_file!r} does not exist")
        return self

"""The ``targets.rum`` section: browser beacons (allowed origins, routes, limits)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from collectors.web_vitals import (
    VitalsThresholds,
)
from monitor.kernel.config.types import Duration, Model, Name

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
    global_per_second: float = Field(default=5000.0, gt=0)
    """All clients together: the ceiling of beacons ingested per second (429 beyond it),
    so that many forged addresses cannot flood the aggregates either."""
    global_burst: int = Field(default=10000, ge=1)


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
    min_clients: int = Field(default=10, ge=1, le=1000)
    """Fewest distinct client addresses among those reports: one host (anyone can forge
    ``Origin`` outside a browser) can neither fire nor clear a Rum* alert on its own."""
    max_reports_per_client: int = Field(default=5, ge=1)
    """Reports of one metric on one route from one client address that count in each
    tenth of the window; more are still in the cumulative histograms, but cannot
    outweigh other users' reports in the p75 the rules read."""

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

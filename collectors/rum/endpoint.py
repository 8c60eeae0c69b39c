"""``POST /vitals`` (and its CORS preflight): checks in order of cost, then ingestion.

1. rate limit per client address, and a ceiling for all clients together (429);
2. ``Origin`` on the allow-list (403; browsers always send it on a POST);
3. content type ``text/plain`` (what ``navigator.sendBeacon(string)`` sends, needing no
   preflight) or ``application/json`` (415 otherwise);
4. body size, by ``Content-Length`` and while reading (413);
5. JSON shape and every metric (400 when nothing in the beacon is usable).

Every rejection is counted by reason; nothing a client sends produces a 500.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from collectors.rum.aggregate import Aggregator
from collectors.rum.beacon import BeaconError, parse_beacon, parse_report
from collectors.rum.config import RumConfig
from collectors.rum.ratelimit import RateLimiter, client_address
from collectors.rum.routes import RouteMatcher
from monitor.kernel.http import read_capped

MEDIA_TYPES = frozenset({"text/plain", "application/json", ""})
ENDPOINT_REJECTIONS = (
    "rate_limited",
    "missing_origin",
    "origin_not_allowed",
    "unsupported_media_type",
    "too_large",
)


class OriginPolicy:
    """Exact origins, and ``scheme://*.domain`` for any subdomain of ``domain``."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self._exact = frozenset(a for a in allowed if "*." not in a)
        self._wildcards = [(a.split("://")[0], a.split("*.", 1)[1]) for a in allowed if "*." in a]
        self.allows = lru_cache(maxsize=1024)(self._allows)

    def _allows(self, origin: str) -> bool:
        origin = origin.lower()
        if origin in self._exact:
            return True
        parts = urlsplit(origin)
        host = parts.netloc
        return any(
            parts.scheme == scheme and host.endswith("." + domain)
            for scheme, domain in self._wildcards
        )


class VitalsEndpoint:
    def __init__(
        self,
        config: RumConfig,
        aggregator: Aggregator,
        *,
        on_change: Callable[[], None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.aggregator = aggregator
        self.origins = OriginPolicy(config.allowed_origins)
        self.routes = RouteMatcher(config.routes)
        limit = config.rate_limit
        self.limiter = RateLimiter(limit.per_second, limit.burst, limit.max_clients)
        self.ceiling = RateLimiter(limit.global_per_second, limit.global_burst, 1)
        """All clients together (one bucket)."""
        self.rejected: Counter[str] = Counter()
        self.beacons: Counter[str] = Counter()
        self._on_change = on_change
        self._monotonic = monotonic

    def _reject(
        self, reason: str, status: int, origin: str | None = None, *, counted: bool = False
    ) -> Response:
        if not counted:
            self.rejected[reason] += 1
        self.beacons["rejected"] += 1
        self._on_change()
        headers = self._cors(origin) if origin else {}
        return Response(f"{reason}\n", status, headers=headers, media_type="text/plain")

    def _cors(self, origin: str) -> dict[str, str]:
        # navigator.sendBeacon always sends credentials: without Allow-Credentials a
        # browser drops the preflighted (application/json) beacon without a word
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    async def preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if not origin or not self.origins.allows(origin):
            return self._reject("origin_not_allowed" if origin else "missing_origin", 403)
        headers = self._cors(origin) | {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
        }
        return Response(status_code=204, headers=headers)

    async def handle(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return await self.preflight(request)
        now = self._monotonic()
        headers = request.headers
        peer = request.client.host if request.client else None
        client = client_address(
            peer, headers.get("x-forwarded-for"), self.config.trusted_proxy_hops
        )
        if not self.limiter.allow(client, now) or not self.ceiling.allow("", now):
            response = self._reject("rate_limited", 429)
            response.headers["Retry-After"] = "1"
            return response
        origin = headers.get("origin")
        if not origin:
            return self._reject("missing_origin", 403)
        if not self.origins.allows(origin):
            return self._reject("origin_not_allowed", 403)
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in MEDIA_TYPES:
            return self._reject("unsupported_media_type", 415, origin)
        body = await read_capped(request, self.config.max_body_bytes)
        if body is None:
            return self._reject("too_large", 413, origin)
        return self._ingest(body, origin, now, client)

    def _ingest(self, body: bytes, origin: str, now: float, client: str) -> Response:
        try:
            items = parse_beacon(body, self.config.max_metrics_per_beacon)
        except BeaconError as exc:
            return self._reject(exc.reason, 400, origin)
        accepted = 0
        first_error: BeaconError | None = None
        for item in items:
            try:
                report = parse_report(item, self.config.check_rating)
            except BeaconError as exc:
                self.rejected[exc.reason] += 1
                first_error = first_error or exc
                continue
            route = self.routes.route(report.path)
            self.aggregator.add(report, route, now, client)
            accepted += 1
        if not accepted:
            assert first_error is not None
            return self._reject(first_error.reason, 400, origin, counted=True)
        self.beacons["accepted"] += 1
        self._on_change()
        return Response(status_code=204, headers=self._cors(origin))

"""Browser beacons on POST /vitals, through a real daemon's HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from conftest import RunningDaemon, make_config, run_daemon
from support import metric, parse_exposition, wait_for
from web_fakes import ORIGIN, lcp

from collectors.rum import RumComponent
from collectors.rum.aggregate import Aggregator
from collectors.rum.beacon import Report
from collectors.rum.routes import RouteMatcher

ROUTES = ["/", "/products/:id", "/docs/*rest", "/cart"]


def cls(value: float, metric_id: str, **fields: Any) -> dict[str, Any]:
    rating = "good" if value <= 0.1 else "needs-improvement" if value <= 0.25 else "poor"
    return {
        "name": "CLS",
        "value": value,
        "rating": rating,
        "id": metric_id,
        "path": "/cart",
        **fields,
    }


class Rum:
    def __init__(self, daemon: RunningDaemon, client: httpx.AsyncClient) -> None:
        self.daemon = daemon
        self.client = client

    @property
    def component(self) -> RumComponent:
        found = [c for c in self.daemon.daemon.components if isinstance(c, RumComponent)]
        return found[0]

    async def post(
        self,
        body: Any,
        *,
        origin: str | None = ORIGIN,
        content_type: str = "text/plain;charset=UTF-8",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = {"content-type": content_type, **(headers or {})}
        if origin is not None:
            h["origin"] = origin
        return await self.client.post(self.daemon.url + "/vitals", content=raw, headers=h)

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return parse_exposition((await self.client.get(self.daemon.url + "/metrics")).text)

    async def rejected(self, reason: str) -> float | None:
        return metric(await self.metrics(), "webvitals_rejected_total", target="rum", reason=reason)


@contextlib.asynccontextmanager
async def rum_daemon(**overrides: Any) -> AsyncIterator[Rum]:
    doc: dict[str, Any] = {
        "allowed_origins": [ORIGIN, "https://*.example.org"],
        "routes": ROUTES,
        **overrides,
    }
    async with (
        run_daemon(make_config(targets={"rum": doc})) as daemon,
        httpx.AsyncClient(timeout=10) as client,
    ):
        yield Rum(daemon, client)


def bucket(m: dict[Any, float], name: str, route: str, le: str) -> float | None:
    return metric(m, name + "_bucket", target="rum", route=route, le=le)


async def test_sendbeacon_text_plain_is_counted_on_threshold_buckets() -> None:
    async with rum_daemon() as rum:
        r = await rum.post(lcp(2500))
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == ORIGIN
        m = await rum.metrics()  # visible at once: the cached exposition is invalidated
    name, route = "webvitals_lcp_seconds", "/products/:id"
    assert bucket(m, name, route, "2.0") == 0
    assert bucket(m, name, route, "2.5") == 1  # a value on the threshold is good (<=)
    assert bucket(m, name, route, "4.0") == 1
    assert bucket(m, name, route, "+Inf") == 1
    assert metric(m, name + "_sum", target="rum", route=route) == 2.5
    assert metric(m, name + "_count", target="rum", route=route) == 1
    assert metric(m, "webvitals_reports_total", target="rum", metric="lcp") == 1
    assert metric(m, "webvitals_beacons_total", target="rum", outcome="accepted") == 1
    # every histogram has both thresholds as bucket edges
    les = {dict(labels).get("le") for (n, labels) in m if n == name + "_bucket"}
    assert {"2.5", "4.0"} <= les


async def test_json_array_and_routes() -> None:
    async with rum_daemon() as rum:
        beacon = [
            lcp(1200, path="/"),
            lcp(1300, path="/docs/guides/setup?utm=x"),
            lcp(1400, path="https://shop.example.com/products/7/"),
            lcp(1500, path="/account/settings"),
            lcp(1600, path=None),
            {"name": "INP", "value": 120, "rating": "good", "id": "v5-1700000000000-1111111111111"},
            {"name": "FCP", "value": 900, "rating": "good", "id": "v5-1700000000000-2222222222222"},
            {
                "name": "TTFB",
                "value": 800,
                "rating": "good",
                "id": "v5-1700000000000-3333333333333",
            },
        ]
        beacon[4].pop("path")
        r = await rum.post(beacon, content_type="application/json")
        assert r.status_code == 204
        m = await rum.metrics()
    count = "webvitals_lcp_seconds_count"
    for route in ("/", "/docs/*rest", "/products/:id"):
        assert metric(m, count, target="rum", route=route) == 1, route
    assert metric(m, count, target="rum", route="other") == 2  # unmatched and missing paths
    routes = {
        dict(labels)["route"]
        for (n, labels) in m
        if n.startswith("webvitals_") and "route" in dict(labels)
    }
    assert routes <= {*ROUTES, "other"}  # never a raw path
    assert bucket(m, "webvitals_ttfb_seconds", "other", "0.8") == 1
    assert bucket(m, "webvitals_fcp_seconds", "other", "1.0") == 1
    assert metric(m, "webvitals_reports_total", target="rum", metric="inp") == 1


INVALID = [
    (b"{not json", "invalid_json"),
    (b"\xff\xfe\x00", "invalid_json"),
    (b"[" * 60_000, "invalid_json"),
    (b"[" + b"9" * 5000 + b"]", "invalid_json"),
    (b"42", "invalid_shape"),
    (b"[]", "invalid_shape"),
    (b'"LCP"', "invalid_shape"),
    (json.dumps([1]).encode(), "invalid_shape"),
    (json.dumps([lcp()] * 21).encode(), "too_many_metrics"),
    (json.dumps(lcp(name="FID")).encode(), "unknown_name"),
    (json.dumps(lcp(name=["LCP"])).encode(), "unknown_name"),
    (json.dumps(lcp(name="lcp")).encode(), "unknown_name"),
    (json.dumps(lcp(-1, rating="good")).encode(), "invalid_value"),
    (json.dumps(lcp(value="2400", rating="good")).encode(), "invalid_value"),
    (json.dumps(lcp(value=True, rating="good")).encode(), "invalid_value"),
    (json.dumps(lcp(value=None, rating="good")).encode(), "invalid_value"),
    (json.dumps(lcp(value=10**9, rating="poor")).encode(), "invalid_value"),
    (b'{"name":"LCP","value":NaN,"id":"v5-1700000000000-1234567890123"}', "invalid_value"),
    (b'{"name":"LCP","value":Infinity,"id":"v5-1700000000000-1234567890123"}', "invalid_value"),
    (b'{"name":"LCP","value":1e400,"id":"v5-1700000000000-1234567890123"}', "invalid_value"),
    (
        json.dumps(
            {"name": "INP", "value": 61_000, "id": "v5-1700000000000-1234567890123"}
        ).encode(),
        "invalid_value",
    ),
    (
        json.dumps({"name": "CLS", "value": 51, "id": "v5-1700000000000-1234567890123"}).encode(),
        "invalid_value",
    ),
    (json.dumps(lcp(id=None)).encode(), "invalid_id"),
    (json.dumps(lcp(id="")).encode(), "invalid_id"),
    (json.dumps(lcp(id=12345)).encode(), "invalid_id"),
    (json.dumps(lcp(id="v5-" + "1" * 60)).encode(), "invalid_id"),
    (json.dumps(lcp(id="<script>alert(1)</script>")).encode(), "invalid_id"),
    (json.dumps(lcp(rating="great")).encode(), "invalid_rating"),
    (json.dumps(lcp(5000, rating="good")).encode(), "rating_mismatch"),
    (json.dumps(lcp(navigationType="teleport")).encode(), "invalid_navigation_type"),
    (json.dumps(lcp(navigationType=["navigate"])).encode(), "invalid_navigation_type"),
    (json.dumps(lcp(path=42)).encode(), "invalid_path"),
    (json.dumps(lcp(path="/" + "a" * 3000)).encode(), "invalid_path"),
]


async def test_every_validation_rule_gives_400_and_a_counter() -> None:
    async with rum_daemon() as rum:
        for body, reason in INVALID:
            before = await rum.rejected(reason) or 0
            r = await rum.post(body)
            assert r.status_code == 400, (body[:60], r.status_code)
            assert r.text.strip() == reason, body[:60]
            assert await rum.rejected(reason) == before + 1, reason
        m = await rum.metrics()
    assert metric(m, "webvitals_beacons_total", target="rum", outcome="accepted") == 0
    assert metric(m, "webvitals_beacons_total", target="rum", outcome="rejected") == len(INVALID)
    assert not [k for k in m if k[0] == "webvitals_lcp_seconds_count"]


async def test_older_library_versions_are_accepted() -> None:
    async with rum_daemon() as rum:
        v1 = {"name": "LCP", "value": 1000, "id": "1700000000000-1234567890123", "path": "/"}
        r = await rum.post(v1)  # web-vitals v1: no rating, no version prefix
        assert r.status_code == 204
        # a v3 batch with FID: FID is dropped and counted, the rest is kept
        r = await rum.post(
            [lcp(1000), {"name": "FID", "value": 5, "id": "v3-1700000000000-1234567890123"}]
        )
        assert r.status_code == 204
        assert await rum.rejected("unknown_name") == 1


async def test_rating_check_can_be_turned_off() -> None:
    async with rum_daemon(check_rating=False) as rum:
        assert (await rum.post(lcp(5000, rating="good"))).status_code == 204


async def test_duplicates_and_settling_of_cls() -> None:
    async with rum_daemon(settle="1s") as rum:
        same = lcp(1000, id="v5-1700000000000-5555555555555")
        assert (await rum.post(same)).status_code == 204
        assert (await rum.post(same)).status_code == 204  # sendBeacon retried
        cls_id = "v5-1700000000000-7777777777777"
        for value in (0.05, 0.12, 0.3):  # reported again on each hide as it grows
            assert (await rum.post(cls(value, cls_id))).status_code == 204
        m = await rum.metrics()
        assert metric(m, "webvitals_lcp_seconds_count", target="rum", route="/products/:id") == 1
        assert metric(m, "webvitals_duplicates_total", target="rum", metric="lcp") == 1
        assert metric(m, "webvitals_cls_count", target="rum", route="/cart") is None  # settling
        assert metric(m, "webvitals_pending_reports", target="rum") == 1

        async def settled() -> dict[Any, float] | None:
            m = await rum.metrics()
            return m if metric(m, "webvitals_cls_count", target="rum", route="/cart") else None

        m = await wait_for(settled)
        assert metric(m, "webvitals_cls_count", target="rum", route="/cart") == 1
        assert metric(m, "webvitals_cls_sum", target="rum", route="/cart") == 0.3  # the latest
        assert bucket(m, "webvitals_cls", "/cart", "0.25") == 0
        assert bucket(m, "webvitals_cls", "/cart", "0.5") == 1
        # a late repeat after it was counted is dropped
        assert (await rum.post(cls(0.4, cls_id))).status_code == 204
        m = await rum.metrics()
        assert metric(m, "webvitals_cls_count", target="rum", route="/cart") == 1
        assert metric(m, "webvitals_duplicates_total", target="rum", metric="cls") == 3


async def test_cors() -> None:
    async with rum_daemon() as rum:
        url = rum.daemon.url + "/vitals"
        pre = {
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        }
        r = await rum.client.options(url, headers=pre)
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "content-type" in r.headers["access-control-allow-headers"].lower()
        assert r.headers["vary"] == "Origin"
        r = await rum.client.options(url, headers={**pre, "origin": "https://evil.test"})
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
        # wildcard subdomains, but no look-alikes and no scheme change
        assert (await rum.post(lcp(), origin="https://a.b.example.org")).status_code == 204
        for bad in (
            "https://example.org",
            "https://example.org.evil.test",
            "http://a.example.org",
            "null",
        ):
            r = await rum.post(lcp(), origin=bad)
            assert r.status_code == 403, bad
            assert "access-control-allow-origin" not in r.headers
        assert await rum.rejected("origin_not_allowed") == 5
        r = await rum.post(lcp(), origin=None)
        assert r.status_code == 403 and await rum.rejected("missing_origin") == 1


async def test_body_limit_and_media_type() -> None:
    async with rum_daemon() as rum:
        limit = 65536
        padded = json.dumps(lcp()).encode()
        padded += b" " * (limit - len(padded))
        assert len(padded) == limit
        assert (await rum.post(padded)).status_code == 204
        r = await rum.post(padded + b" ")
        assert r.status_code == 413 and r.text.strip() == "too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            for _ in range(70):
                yield b" " * 1024

        r = await rum.client.post(
            rum.daemon.url + "/vitals",
            content=chunks(),
            headers={"origin": ORIGIN, "content-type": "text/plain"},
        )
        assert r.status_code == 413
        assert await rum.rejected("too_large") == 2
        r = await rum.post(lcp(), content_type="application/x-www-form-urlencoded")
        assert r.status_code == 415 and await rum.rejected("unsupported_media_type") == 1
        assert (
            await rum.post(lcp(), content_type="application/json; charset=utf-8")
        ).status_code == 204
        r = await rum.client.get(rum.daemon.url + "/vitals")
        assert r.status_code == 405


async def test_rate_limit_per_client() -> None:
    async with rum_daemon(rate_limit={"per_second": 0.1, "burst": 3}, trusted_proxy_hops=1) as rum:
        # behind one proxy: the last X-Forwarded-For entry is the client; spoofed ones ignored
        def via(client: str, spoofed: str = "6.6.6.6") -> dict[str, str]:
            return {"x-forwarded-for": f"{spoofed}, {client}"}

        for _ in range(3):
            assert (await rum.post(lcp(), headers=via("198.51.100.1"))).status_code == 204
        r = await rum.post(lcp(), headers=via("198.51.100.1", spoofed="1.2.3.4"))
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert (await rum.post(lcp(), headers=via("198.51.100.2"))).status_code == 204
        assert await rum.rejected("rate_limited") == 1


async def test_forged_forwarded_for_from_a_direct_client_is_one_client() -> None:
    """No trusted proxy (the default): X-Forwarded-For is whatever the client claims, so
    rotating it neither escapes the rate limit nor counts as more clients. (uvicorn
    used to rewrite the address from it for loopback peers, before our own reading.)"""
    async with rum_daemon(rate_limit={"per_second": 0.1, "burst": 3}) as rum:
        statuses = [
            (await rum.post(lcp(), headers={"x-forwarded-for": f"203.0.113.{i}"})).status_code
            for i in range(5)
        ]
        assert statuses == [204, 204, 204, 429, 429]


async def raw_beacons(port: int, bodies: list[bytes]) -> list[int]:
    """POST each body on one keep-alive connection with a minimal HTTP/1.1 client (httpx
    costs more CPU per request than the endpoint itself); returns the status codes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    statuses = []
    for body in bodies:
        writer.write(
            b"POST /vitals HTTP/1.1\r\nHost: monitor\r\nOrigin: "
            + ORIGIN.encode()
            + b"\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        _, found, rest = head.lower().partition(b"content-length:")
        await reader.readexactly(int(rest.split(b"\r\n")[0]) if found else 0)
        statuses.append(int(head.split(b" ")[1]))
    writer.close()
    await writer.wait_closed()
    return statuses


async def test_a_thousand_beacons_a_second_without_errors() -> None:
    async with rum_daemon(rate_limit={"per_second": 100000, "burst": 100000}) as rum:
        port = rum.daemon.daemon.bound_port
        assert port is not None
        bodies = [json.dumps(lcp(1000 + i % 3000)).encode() for i in range(1000)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(*(raw_beacons(port, bodies[i::20]) for i in range(20)))
        elapsed = loop.time() - started
        m = await rum.metrics()
    statuses = [s for r in results for s in r]
    assert statuses == [204] * 1000
    assert metric(m, "webvitals_lcp_seconds_count", target="rum", route="/products/:id") == 1000
    assert metric(m, "webvitals_rejected_total", target="rum", reason="rate_limited") is None
    print(f"1000 beacons in {elapsed:.2f} s ({1000 / elapsed:.0f}/s)")


async def test_random_garbage_never_gets_a_500() -> None:
    rng = random.Random(7)
    async with rum_daemon(rate_limit={"per_second": 100000, "burst": 100000}) as rum:
        seen = set()
        for _ in range(120):
            kind = rng.randrange(3)
            if kind == 0:
                body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            elif kind == 1:
                item = lcp()
                key = rng.choice(list(item))
                item[key] = rng.choice([None, [], {}, -1, 1e308, "x" * 100, True, 0.5])
                body = json.dumps(item).encode()
            else:
                body = json.dumps(rng.choice([[{}], {"name": {}}, [[]], {"value": []}])).encode()
            r = await rum.post(body)
            seen.add(r.status_code)
            assert r.status_code in (204, 400), body
    assert 400 in seen


def test_routes_are_bounded_by_the_patterns() -> None:
    routes = RouteMatcher(("/", "/products/:id", "/docs/*rest", "/u/:id/edit"))
    assert routes.route("/") == "/"
    assert routes.route("/products/42") == "/products/:id"
    assert routes.route("/products/42/") == "/products/:id"
    assert routes.route("/products/42/reviews") == "other"
    assert routes.route("/products/") == "other"
    assert routes.route("/docs") == "/docs/*rest"
    assert routes.route("/docs/a/b/c") == "/docs/*rest"
    assert routes.route("/u/7/edit?x=1#top") == "/u/:id/edit"
    assert routes.route("https://x.test/products/9") == "/products/:id"
    assert routes.route(None) == "other"
    assert routes.route("/secret-token-abc123") == "other"


def test_memory_is_bounded() -> None:
    config = make_config(
        targets={"rum": {"allowed_origins": [ORIGIN], "max_tracked_ids": 100, "settle": "10s"}}
    ).targets.rum
    assert config is not None
    agg = Aggregator(config)
    for i in range(1000):
        agg.add(Report("lcp", 1.0, f"v5-1700000000000-{10**12 + i}", None), "/", float(i))
        agg.add(Report("cls", 0.01, f"v5-1700000000000-{10**12 + i}", None), "/", float(i))
    assert agg.tracked <= 100 and agg.pending <= 100
    assert agg.histograms[("lcp", "/")].count == 1000
    agg.flush(2000.0)  # every settle window has passed: CLS counted, its ids remembered
    assert agg.pending == 0 and agg.tracked == 100
    assert agg.histograms[("cls", "/")].count == 1000
    agg.flush(2000.0 + 1800.0)  # and the dedupe window
    assert agg.tracked == 0


def test_settling_values_cost_a_full_collection_nothing() -> None:
    """The CLS/INP values waiting to settle are tuples of atoms the collector untracks:
    a full collection at 5,000 beacons/s would otherwise walk 100,000 of them (100 ms)."""
    import gc

    config = make_config(targets={"rum": {"allowed_origins": [ORIGIN]}}).targets.rum
    assert config is not None
    agg = Aggregator(config)
    for i in range(100):
        agg.add(Report("cls", 0.01, f"v5-1700000000000-{10**12 + i}", None), "/", 0.0, "c")
    gc.collect()
    waiting = list(agg._pending.values())
    assert len(waiting) == 100
    assert not any(gc.is_tracked(item) for item in waiting)


def test_config_rules() -> None:
    from monitor.app.env_config import config_from_environment
    from monitor.kernel.config.loading import ConfigError

    def problems(**rum: Any) -> str:
        with pytest.raises(ConfigError) as info:
            make_config(targets={"rum": rum})
        return str(info.value)

    assert "allowed_origins" in problems()
    assert "at least one origin" in problems(allowed_origins=[])
    assert "invalid origin" in problems(allowed_origins=["example.com"])
    assert "invalid route pattern" in problems(allowed_origins=[ORIGIN], routes=["products"])
    env = config_from_environment(
        {
            "MONITOR_VITALS_ORIGINS": ORIGIN,
            "MONITOR_VITALS_ROUTES": "/ /products/:id",
            "DYNO": "web.1",
        }
    )
    assert env["targets"]["rum"] == {
        "allowed_origins": [ORIGIN],
        "routes": ["/", "/products/:id"],
        "trusted_proxy_hops": 1,
    }

"""/metrics and /healthz: auth, content negotiation, gzip, no I/O on scrape."""

from __future__ import annotations

import base64
import gzip
from collections.abc import AsyncIterator

import httpx
import pytest

from monitor.app.config import validate
from monitor.kernel.exposition import Exposition
from monitor.kernel.http import build_app, wants_gzip
from monitor.kernel.snapshot import Snapshot, gauge
from monitor.kernel.snapshot_store import SnapshotStore

PG_UP = gauge("pg_up", "up")


def _store() -> SnapshotStore:
    store = SnapshotStore()
    store.put(
        Snapshot("postgres", "primary", (PG_UP(1, target="primary"),), True, 1.0, 0.01),
        "success",
        15,
    )
    return store


async def _client(http: dict[str, str] | None = None, running: bool = True) -> httpx.AsyncClient:
    config = validate({"http": http or {}}, environ={})
    store = _store()
    app = build_app(
        exposition=Exposition(store),
        store=store,
        http_config=config.http,
        is_running=lambda: running,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def open_client() -> AsyncIterator[httpx.AsyncClient]:
    async with await _client() as client:
        yield client


async def test_metrics_text_format(open_client: httpx.AsyncClient) -> None:
    r = await open_client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'pg_up{target="primary"} 1.0' in r.text
    assert "monitor_collector_up" in r.text


async def test_metrics_openmetrics_on_accept(open_client: httpx.AsyncClient) -> None:
    r = await open_client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")


async def test_metrics_gzip_when_asked(open_client: httpx.AsyncClient) -> None:
    r = await open_client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert 'pg_up{target="primary"} 1.0' in r.text  # httpx decoded it
    raw = await open_client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers


def test_wants_gzip_quality_values() -> None:
    assert wants_gzip("gzip")
    assert wants_gzip("br, gzip;q=0.5")
    assert not wants_gzip("gzip;q=0")
    assert not wants_gzip("identity")
    assert wants_gzip("*")


async def test_gzip_body_is_valid() -> None:
    async with await _client() as client:
        r = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
        # httpx already decoded: re-request the raw stream
        async with client.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as s:
            raw = b"".join([chunk async for chunk in s.aiter_raw()])
    assert gzip.decompress(raw).decode() == r.text


async def test_bearer_token_required_when_configured() -> None:
    async with await _client({"auth_token": "s3cret-token"}) as client:
        assert (await client.get("/metrics")).status_code == 401
        bad = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        assert "Bearer" in bad.headers["www-authenticate"]
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        # Grafana Cloud's Metrics Endpoint can send the token as the basic-auth password
        basic = base64.b64encode(b"12345:s3cret-token").decode()
        ok2 = await client.get("/metrics", headers={"Authorization": f"Basic {basic}"})
        assert ok2.status_code == 200
        # healthz stays open for the platform's health checks
        assert (await client.get("/healthz")).status_code == 200


async def test_basic_auth() -> None:
    async with await _client({"username": "prom", "password": "pw-12345"}) as client:
        good = base64.b64encode(b"prom:pw-12345").decode()
        wrong = base64.b64encode(b"prom:nope").decode()
        assert (
            await client.get("/metrics", headers={"Authorization": f"Basic {good}"})
        ).status_code == 200
        assert (
            await client.get("/metrics", headers={"Authorization": f"Basic {wrong}"})
        ).status_code == 401
        assert (
            await client.get("/metrics", headers={"Authorization": "Basic !!notb64"})
        ).status_code == 401
        assert (
            await client.get("/metrics", headers={"Authorization": "Bearer pw-12345"})
        ).status_code == 401


async def test_healthz_is_status_only_and_the_detail_needs_credentials() -> None:
    async with await _client() as client:
        body = (await client.get("/healthz")).json()
        assert body["status"] == "ok"
        assert body["collectors"] == {"up": 1, "down": 0}
        # no credentials configured: the detail is not served to anyone
        r = await client.get("/healthz/detail")
        assert r.status_code == 403 and "METRICS_AUTH_TOKEN" in r.text
    async with await _client(running=False) as client:
        assert (await client.get("/healthz")).status_code == 503
    async with await _client({"auth_token": "tok-12345"}) as client:
        assert (await client.get("/healthz/detail")).status_code == 401
        detail = await client.get("/healthz/detail", headers={"Authorization": "Bearer tok-12345"})
        (collector,) = detail.json()["collectors"]
        assert collector["collector"] == "postgres" and collector["up"] is True
        assert "last_error" in collector
    async with await _client({"public_read_only": True}) as client:  # type: ignore[dict-item]
        assert (await client.get("/healthz/detail")).status_code == 200


async def test_metrics_render_is_cached_until_store_changes() -> None:
    store = _store()
    exposition = Exposition(store)
    first = exposition.render()
    assert exposition.render() is first  # no re-render without a change
    store.put(
        Snapshot("postgres", "primary", (PG_UP(0, target="primary"),), False, 2.0, 0.01),
        "error",
        15,
    )
    second = exposition.render()
    assert second is not first
    assert b'pg_up{target="primary"} 0.0' in second


async def test_plain_routes_are_answered_without_the_router() -> None:
    """DirectRoutes: an exact path and method go straight to the route's handler (with
    Starlette's exception handling); other methods, parameters and paths to the app."""
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from monitor.kernel.http import DirectRoutes

    async def beacon(request: Request) -> Response:
        return PlainTextResponse(f"took {len(await request.body())} from {request.client}")

    async def item(request: Request) -> Response:
        return PlainTextResponse(f"item {request.path_params['id']}")

    async def broken(request: Request) -> Response:
        raise RuntimeError("handler bug")

    config = validate({}, environ={})
    store = _store()
    routes = [
        Route("/vitals", beacon, methods=["POST"]),
        Route("/items/{id}", item),
        Route("/broken", broken, methods=["POST"]),
    ]
    app = build_app(
        exposition=Exposition(store),
        store=store,
        http_config=config.http,
        is_running=lambda: True,
        extra_routes=routes,
    )
    direct = DirectRoutes(app)
    routed: list[str] = []
    router = app.router

    async def counting_router(scope, receive, send):  # type: ignore[no-untyped-def]
        routed.append(scope["path"])
        await router(scope, receive, send)

    app.router = counting_router  # type: ignore[assignment]
    app.middleware_stack = None  # rebuilt around the counting router
    transport = httpx.ASGITransport(app=direct, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post("/vitals", content=b"12345")
        assert (r.status_code, r.text.split(" from ")[0]) == (200, "took 5")
        assert (await client.get("/metrics")).status_code == 200
        assert routed == []  # neither went through the router
        assert (await client.get("/vitals")).status_code == 405  # the app answers
        assert (await client.get("/items/7")).text == "item 7"
        assert (await client.get("/nowhere")).status_code == 404
        assert routed == ["/vitals", "/items/7", "/nowhere"]
        assert (await client.post("/broken")).status_code == 500

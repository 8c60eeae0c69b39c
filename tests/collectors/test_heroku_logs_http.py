"""``POST /logs``: framing edge cases, credentials, hostile bodies (2xx and a counter,
or 401/413, never a 500), and a real daemon receiving drains over HTTP while scraped."""

from __future__ import annotations

import asyncio
import base64
import os
import random

import httpx
import pytest
from conftest import make_config, run_daemon
from heroku_drain_support import PASSWORD, body, component, exposition, headers
from starlette.applications import Starlette
from support import metric, parse_exposition, wait_for

from collectors.heroku_logs.component import LogDrainComponent
from collectors.heroku_logs.framing import split_frames
from collectors.heroku_logs.release_log import SqliteReleaseLog

LOGPLEX = "application/logplex-1"


def auth(password: str = PASSWORD, user: str = "drain") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def client(comp: LogDrainComponent) -> httpx.AsyncClient:
    app = Starlette(routes=list(comp.routes()))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drain")


def post_headers(**extra: str) -> dict[str, str]:
    return {"content-type": LOGPLEX, "authorization": auth(), **extra}


# -- framing ------------------------------------------------------------------------------


def test_octet_count_includes_the_newline_and_l10_has_none() -> None:
    l10 = b"<172>1 2026-11-30T14:07:25+00:00 host heroku logplex - Error L10 (x): 3 messages"
    line = b"<134>1 2026-11-30T14:07:24+00:00 host heroku web.1 - two\nlines\n"
    raw = b"%d %s%d %s" % (len(l10), l10, len(line), line)
    messages, odd = split_frames(raw)
    assert messages == [l10, line[:-1]]
    assert odd == {}


@pytest.mark.parametrize(
    ("raw", "messages", "odd"),
    [
        (b"5 abcd", [b"abcd"], {"lenient": 1}),  # a fixture that dropped its last LF
        (b"50 abcd\n", [b"abcd"], {"truncated": 1}),
        (b"trolllllll", [b"trolllllll"], {"malformed": 1}),
        (b"3 abcdef\n4 xyz\n", [b"abcdef", b"xyz"], {"resynced": 1}),  # stale count
        (b"\n\n", [], {}),
        (b"", [], {}),
    ],
)
def test_framing_fallbacks(raw: bytes, messages: list[bytes], odd: dict[str, int]) -> None:
    assert split_frames(raw) == (messages, odd)


def test_framing_never_raises_on_random_bytes() -> None:
    rng = random.Random(7)
    comp = component()
    for _ in range(300):
        raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
        if rng.random() < 0.5:
            raw = b"%d <158>1 " % rng.randint(0, 400) + raw
        messages, _ = split_frames(raw)
        assert sum(len(m) for m in messages) <= len(raw)
        comp.ingestor.ingest("shop", raw, 1.0)
    exposition(comp)  # renders


# -- the endpoint -------------------------------------------------------------------------


async def test_samples_over_http_and_retry_dedupe() -> None:
    comp = component()
    async with client(comp) as http:
        for name in ("01", "02", "09"):
            r = await http.post(
                "/logs?app=shop", content=body(name), headers=post_headers(**headers(name))
            )
            assert r.status_code == 204, r.text
        r = await http.post("/logs/other-app", content=body("01"), headers=post_headers())
        assert r.status_code == 204
    _, m = exposition(comp)
    assert metric(m, "heroku_drain_requests_total", outcome="accepted") == 3
    assert metric(m, "heroku_drain_requests_total", outcome="duplicate") == 1
    assert metric(m, "heroku_drain_frames_total", app="shop", outcome="duplicate") == 15
    assert metric(m, "heroku_logplex_dropped_messages_total", app="shop") == 3
    assert metric(m, "heroku_dyno_errors_total", app="shop", process="web.2", code="R14") == 1
    assert metric(m, "heroku_router_errors_total", app="other-app", code="H12") == 1
    assert metric(m, "heroku_drain_msg_count_mismatches_total", app="shop") is None


async def test_missing_logplex_headers_are_fine() -> None:
    comp = component(default_app="shop")
    async with client(comp) as http:
        for _ in range(2):  # no Frame-Id: no dedupe (Private Space drains)
            r = await http.post("/logs", content=body("01"), headers=post_headers())
            assert r.status_code == 204
    _, m = exposition(comp)
    assert metric(m, "heroku_router_errors_total", app="shop", code="H12") == 2


@pytest.mark.parametrize(
    "bad",
    [b"trolllllll", b"\xff\xfe\x00" * 100, b"999999999999 <158>1 x", b"12 <158>1 x\n" * 50],
)
async def test_malformed_bodies_get_2xx_and_are_counted(bad: bytes) -> None:
    comp = component()
    async with client(comp) as http:
        r = await http.post("/logs/shop", content=bad, headers=post_headers())
    assert r.status_code == 204
    _, m = exposition(comp)
    bad_frames = sum(
        v
        for (name, labels), v in m.items()
        if name == "heroku_drain_frames_total" and dict(labels)["outcome"] != "ok"
    )
    bad_lines = sum(
        v
        for (name, labels), v in m.items()
        if name == "heroku_drain_lines_total" and dict(labels)["outcome"] == "malformed"
    )
    assert bad_frames + bad_lines > 0


async def test_credentials() -> None:
    comp = component(drain_tokens=["d.4f1c2a9e-7b3d-4e8a-9c21-5d6e7f809a1b"])
    token = {"logplex-drain-token": "d.4f1c2a9e-7b3d-4e8a-9c21-5d6e7f809a1b"}
    async with client(comp) as http:
        for h in (
            {"content-type": LOGPLEX, **token},  # no password
            {"content-type": LOGPLEX, "authorization": auth("wrong"), **token},
            {"content-type": LOGPLEX, "authorization": "Basic !!!", **token},
            {"content-type": LOGPLEX, "authorization": f"Bearer {PASSWORD}", **token},
            post_headers(),  # right password, no token
            post_headers(**{"logplex-drain-token": "d.other"}),
        ):
            r = await http.post("/logs/shop", content=body("01"), headers=h)
            assert r.status_code == 401, h
            assert PASSWORD not in r.text
        r = await http.post("/logs/shop", content=body("01"), headers=post_headers(**token))
        assert r.status_code == 204
    _, m = exposition(comp)
    assert metric(m, "heroku_drain_requests_total", outcome="unauthorized") == 6
    assert metric(m, "heroku_router_errors_total", app="shop", code="H12") == 1


async def test_no_credential_is_403_with_how_to_enable() -> None:
    comp = component(password=None)
    async with client(comp) as http:
        r = await http.post("/logs/shop", content=body("01"), headers=post_headers())
    assert r.status_code == 403
    assert "LOG_DRAIN_PASSWORD" in r.text and "heroku drains:add" in r.text


async def test_refusals() -> None:
    comp = component(max_body_bytes=4096, max_apps=1)
    async with client(comp) as http:
        r = await http.post(
            "/logs/shop", content=body("01"), headers=post_headers(**{"content-type": "text/plain"})
        )
        assert r.status_code == 415
        r = await http.post("/logs/shop", content=b"x" * 5000, headers=post_headers())
        assert r.status_code == 413

        async def chunks():  # no Content-Length: the cap applies while reading
            for _ in range(10):
                yield b"x" * 1000

        r = await http.post("/logs/shop", content=chunks(), headers=post_headers())
        assert r.status_code == 413
        r = await http.post("/logs", content=body("01"), headers=post_headers())
        assert r.status_code == 400  # no app named, no default
        r = await http.post("/logs/bad%20app", content=body("01"), headers=post_headers())
        assert r.status_code == 400
        comp.endpoint.in_flight = comp.config.max_concurrent
        r = await http.post("/logs/shop", content=body("01"), headers=post_headers())
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        comp.endpoint.in_flight = 0
        assert (
            await http.post("/logs/shop", content=body("01"), headers=post_headers())
        ).status_code == 204
        # a second app past max_apps: 2xx (Logplex would drop it on a 4xx anyway), counted
        assert (
            await http.post("/logs/app2", content=body("01"), headers=post_headers())
        ).status_code == 204
    _, m = exposition(comp)
    assert metric(m, "heroku_drain_requests_total", outcome="too_large") == 2
    assert metric(m, "heroku_drain_requests_total", outcome="app_limit") == 1
    assert metric(m, "heroku_router_errors_total", app="app2", code="H12") is None


# -- releases survive a restart -------------------------------------------------------------


async def test_releases_are_stored_and_reloaded(tmp_path: os.PathLike[str]) -> None:
    path = str(tmp_path) + "/state.db"
    first = component(SqliteReleaseLog(path))
    await first.start()
    first.ingestor.ingest("shop", body("05"), 1.0)
    first.ingestor.ingest("shop", body("05"), 2.0)  # repeated lines: one row per version
    await first.flush()
    await first.stop()
    second = component(SqliteReleaseLog(path))
    await second.start()
    await wait_for(lambda: "shop" in second.ingestor.releases.latest)
    _, m = exposition(second)
    assert metric(m, "heroku_release_info", app="shop", version="v125", commit="") == 1
    rows = await second.release_log.recent("shop")
    assert [r.version for r in rows] == [125, 124, 123]
    assert rows[2].commit == "60a874b3"
    second.ingestor.ingest("shop", body("05"), 3.0)  # known versions: nothing new
    await second.flush()
    assert len(await second.release_log.recent("shop")) == 3
    await second.stop()


# -- a real daemon ------------------------------------------------------------------------------


async def test_daemon_receives_drains_while_scraped() -> None:
    config = make_config(
        interval="1s",
        http={"listen": "127.0.0.1:0", "auth_token": "metrics-token-1"},
        log_drain={
            "password": PASSWORD,
            "routes": ["/api/v1/orders", "/checkout"],
            "min_requests": 1,
        },
    )
    async with run_daemon(config) as daemon, httpx.AsyncClient(timeout=10) as http:
        url = daemon.url
        # the metrics token is no drain credential, nor the drain password a metrics one
        r = await http.post(
            f"{url}/logs/shop",
            content=body("01"),
            headers={"content-type": LOGPLEX, "authorization": "Bearer metrics-token-1"},
        )
        assert r.status_code == 401
        r = await http.get(f"{url}/metrics", headers={"authorization": auth()})
        assert r.status_code == 401

        stop = asyncio.Event()

        async def scrape() -> int:
            n = 0
            while not stop.is_set():
                r = await http.get(
                    f"{url}/metrics", headers={"authorization": "Bearer metrics-token-1"}
                )
                assert r.status_code == 200
                n += 1
                await asyncio.sleep(0.01)
            return n

        async def send(name: str) -> None:
            r = await http.post(
                f"{url}/logs/shop", content=body(name), headers=post_headers(**headers(name))
            )
            assert r.status_code == 204, r.text

        scraper = asyncio.create_task(scrape())
        await asyncio.gather(*(send(n) for n in ("01", "02", "03", "04", "05", "06", "07", "08")))
        await send("09")
        stop.set()
        assert await scraper > 0

        async def scraped() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            r = await http.get(
                f"{url}/metrics", headers={"authorization": "Bearer metrics-token-1"}
            )
            m = parse_exposition(r.text)
            ready = metric(
                m, "heroku_router_window_requests", target="log_drain", app="shop", window="5m"
            )
            return m if ready else None

        m = await wait_for(scraped, timeout=15)
        assert metric(m, "heroku_router_errors_total", app="shop", code="H12") == 1
        assert metric(m, "heroku_logplex_dropped_messages_total", app="shop") == 1234 + 57 + 3
        assert metric(m, "heroku_release_info", app="shop", version="v126", commit="1a2b3c4d") == 1
        assert (
            metric(m, "heroku_drain_seconds_since_last_batch", target="log_drain", app="shop")
            is not None
        )
        assert (
            metric(m, "heroku_router_window_requests", target="log_drain", app="shop", window="5m")
            == 14
        )
        assert metric(m, "heroku_drain_requests_total", outcome="duplicate") == 1

        async def memory_alert() -> bool:
            r = await http.get(f"{url}/alerts", headers={"authorization": "Bearer metrics-token-1"})
            return "HerokuDynoMemoryHigh" in r.text  # R14 on web.2 from 02, no `for`

        await wait_for(memory_alert, timeout=15)


def test_log_drain_password_alone_enables_the_drain() -> None:
    from monitor.app.config import validate
    from monitor.app.env_config import config_from_environment

    env = {"LOG_DRAIN_PASSWORD": PASSWORD, "HEROKU_APP_NAME": "shop"}
    config = validate(config_from_environment(env), environ={})
    assert config.log_drain is not None
    assert config.log_drain.default_app == "shop"
    assert config.log_drain.has_credential
    assert PASSWORD in set(config.secrets())  # redacted from logs like the others
    assert validate(config_from_environment({}), environ={}).log_drain is None


async def test_without_log_drain_the_endpoint_says_how_to_enable_it() -> None:
    async with run_daemon(make_config()) as daemon, httpx.AsyncClient(timeout=10) as http:
        r = await http.post(f"{daemon.url}/logs/shop", content=body("01"), headers=post_headers())
    assert r.status_code == 403
    assert "LOG_DRAIN_PASSWORD" in r.text

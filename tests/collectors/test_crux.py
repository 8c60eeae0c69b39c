"""CrUX daily and History API collectors against a local server speaking their format."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import make_config, run_daemon
from support import metric, parse_exposition, wait_for
from web_fakes import FakeServer, Harness, Reply, daily_body, history_body

from collectors.crux import CruxSource, sources
from collectors.crux.client import RecordKey
from collectors.crux.config import CruxConfig
from collectors.crux.daily import DailyJob
from collectors.google_api import Backoff

API_KEY = "AIzaFAKE-crux-key-0123456789"
DAILY = "/v1/records:queryRecord"
HISTORY = "/v1/records:queryHistoryRecord"
PST = timezone(timedelta(hours=-8))
FAST = Backoff(base=0.02, cap=0.05)


def google_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


NOT_FOUND = Reply(404, google_error(404, "NOT_FOUND", "chrome ux report data not found"))
QUOTA = Reply(429, google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"))


@pytest.fixture
def google() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def crux_config(server: FakeServer, **overrides: Any) -> CruxConfig:
    doc: dict[str, Any] = {
        "api_key": API_KEY,
        "origins": ["https://example.com"],
        "endpoint": f"{server.url}/v1",
        "request_timeout": "2s",
        "timeout": "10s",
        **overrides,
    }
    config = make_config(targets={"crux": doc}).targets.crux
    assert config is not None
    return config


def daily_job(config: CruxConfig, clock: list[float] | None = None) -> DailyJob:
    source = CruxSource(RecordKey("origin", "https://example.com"), config, backoff=FAST)
    if clock is not None:
        source.daily._wall_clock = lambda: clock[0]
    return source.daily


LABELS = {"target": "https://example.com", "origin": "https://example.com"}


async def test_exported_values_are_exact(google: FakeServer) -> None:
    google.route(
        "POST", DAILY, lambda seen: Reply(200, daily_body(form_factor=seen.json()["formFactor"]))
    )
    h = Harness()
    snap = await h.run(daily_job(crux_config(google)))
    assert snap.ok, snap.error
    m = h.parsed()
    for ff in ("PHONE", "DESKTOP"):
        labels = {**LABELS, "form_factor": ff}
        assert metric(m, "crux_data_available", **labels) == 1.0
        assert metric(m, "crux_p75_seconds", **labels, metric="lcp") == 3.0
        assert metric(m, "crux_cls_p75", **labels) == 0.05
        assert metric(m, "crux_good_ratio", **labels, metric="lcp") == 0.9343
        assert metric(m, "crux_poor_ratio", **labels, metric="lcp") == 0.0239
        assert metric(m, "crux_good_ratio", **labels, metric="cls") == 0.9343
        assert metric(m, "crux_p75_rating", **labels, metric="lcp", rating="needs-improvement") == 1
        assert metric(m, "crux_p75_rating", **labels, metric="lcp", rating="good") == 0
        assert metric(m, "crux_p75_rating", **labels, metric="cls", rating="good") == 1
        end = datetime(2026, 2, 8, tzinfo=PST).timestamp()  # end of 7 Feb in PST
        assert end == datetime(2026, 2, 8, 8, tzinfo=UTC).timestamp()
        assert metric(m, "crux_collection_period_end_timestamp_seconds", **labels) == end
        start = datetime(2026, 1, 11, 8, tzinfo=UTC).timestamp()
        assert metric(m, "crux_collection_period_start_timestamp_seconds", **labels) == start
        # INP is not in the answer: absent, never 0; no sub-part metric leaks in
        assert metric(m, "crux_p75_seconds", **labels, metric="inp") is None
        assert metric(m, "crux_good_ratio", **labels, metric="inp") is None
    names = {name for name, _ in m}
    assert not any("image" in n or "navigation" in n for n in names)
    assert metric(m, "crux_requests_total", target=LABELS["target"], api="daily", outcome="ok") == 2


async def test_request_shape(google: FakeServer) -> None:
    google.route("POST", DAILY, Reply(200, daily_body()))
    doc = {
        "api_key": API_KEY,
        "origins": ["https://Example.com/"],
        "urls": ["https://example.com/pricing"],
        "endpoint": f"{google.url}/v1",
    }
    config = make_config(targets={"crux": doc})
    assert config.targets.crux is not None
    assert config.targets.crux.origins == ("https://example.com",)
    srcs = sources(config.targets.crux, config.interval)
    assert [s.name for s in srcs] == ["https://example.com", "https://example.com/pricing"]
    for source in srcs:
        assert isinstance(source, CruxSource)
        source.client._backoff = FAST
        await source.daily.collect()
        await source.close()
    bodies = [r.json() for r in google.seen(DAILY)]
    assert all(r.query == {"key": [API_KEY]} for r in google.seen(DAILY))
    assert {(b.get("origin"), b.get("url"), b["formFactor"]) for b in bodies} == {
        ("https://example.com", None, "PHONE"),
        ("https://example.com", None, "DESKTOP"),
        (None, "https://example.com/pricing", "PHONE"),
        (None, "https://example.com/pricing", "DESKTOP"),
    }
    assert set(bodies[0]["metrics"]) == {
        "largest_contentful_paint",
        "interaction_to_next_paint",
        "cumulative_layout_shift",
        "first_contentful_paint",
        "experimental_time_to_first_byte",
    }


async def test_not_found_is_no_data_not_an_error(google: FakeServer) -> None:
    google.route("POST", DAILY, NOT_FOUND)
    h = Harness()
    snap = await h.run(daily_job(crux_config(google)))
    assert snap.ok and snap.error is None
    m = h.parsed()
    assert metric(m, "crux_data_available", **LABELS, form_factor="PHONE") == 0.0
    assert metric(m, "crux_data_available", **LABELS, form_factor="DESKTOP") == 0.0
    assert not [k for k in m if k[0] in ("crux_p75_seconds", "crux_cls_p75", "crux_good_ratio")]
    assert metric(m, "monitor_collector_up", collector="crux", target=LABELS["target"]) == 1.0
    assert len(google.seen(DAILY)) == 2  # one per form factor, no retry


async def test_html_404_from_a_wrong_endpoint_is_an_error(google: FakeServer) -> None:
    google.route("POST", DAILY, Reply(404, "<html>Not Found</html>"))
    snap = await Harness().run(daily_job(crux_config(google)))
    assert not snap.ok and "HTTP 404" in (snap.error or "")


async def test_bad_request_is_never_retried(google: FakeServer) -> None:
    google.route(
        "POST",
        DAILY,
        Reply(
            400,
            google_error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
            ),
        ),
    )
    h = Harness()
    snap = await h.run(daily_job(crux_config(google, form_factors=["PHONE"])))
    assert not snap.ok
    assert "INVALID_ARGUMENT" in (snap.error or "") and "API key not valid" in (snap.error or "")
    assert len(google.seen(DAILY)) == 1
    m = h.parsed()
    assert metric(m, "monitor_collector_up", collector="crux", target=LABELS["target"]) == 0.0
    assert (
        metric(
            m, "crux_requests_total", target=LABELS["target"], api="daily", outcome="bad_request"
        )
        == 1
    )


async def test_rate_limited_is_retried_with_backoff(google: FakeServer) -> None:
    google.route("POST", DAILY, QUOTA, QUOTA, Reply(200, daily_body()))
    h = Harness()
    snap = await h.run(daily_job(crux_config(google, form_factors=["PHONE"])))
    assert snap.ok, snap.error
    m = h.parsed()
    t = LABELS["target"]
    assert metric(m, "crux_requests_total", target=t, api="daily", outcome="rate_limited") == 2
    assert metric(m, "crux_requests_total", target=t, api="daily", outcome="ok") == 1
    assert metric(m, "crux_p75_seconds", **LABELS, form_factor="PHONE", metric="lcp") == 3.0


async def test_429_without_error_wrapper_and_retry_limit(google: FakeServer) -> None:
    unwrapped = Reply(
        429, {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}
    )
    google.route("POST", DAILY, unwrapped)
    snap = await Harness().run(
        daily_job(crux_config(google, form_factors=["PHONE"], max_retries=2))
    )
    assert not snap.ok and "RESOURCE_EXHAUSTED" in (snap.error or "")
    assert len(google.seen(DAILY)) == 3  # the first try and two retries


async def test_failures_keep_the_last_answer(google: FakeServer) -> None:
    clock = [datetime(2026, 2, 9, 10, tzinfo=UTC).timestamp()]
    google.route("POST", DAILY, Reply(200, daily_body()))
    config = crux_config(google, form_factors=["PHONE"])
    job = daily_job(config, clock)
    h = Harness()
    assert (await h.run(job)).ok
    fetched = metric(h.parsed(), "crux_fetched_timestamp_seconds", **LABELS, form_factor="PHONE")
    assert fetched == clock[0]
    for failure in (
        Reply(500, google_error(500, "INTERNAL", "backend error")),
        QUOTA,
        Reply(200, daily_body(), delay=3.0),  # slower than request_timeout
    ):
        google.route("POST", DAILY, failure)
        clock[0] += 3600
        snap = await h.run(job)
        assert not snap.ok
        m = h.parsed()
        assert metric(m, "crux_p75_seconds", **LABELS, form_factor="PHONE", metric="lcp") == 3.0
        assert metric(m, "crux_fetched_timestamp_seconds", **LABELS, form_factor="PHONE") == fetched
        assert metric(m, "monitor_collector_up", collector="crux", target=LABELS["target"]) == 0
    t = LABELS["target"]
    assert metric(m, "crux_requests_total", target=t, api="daily", outcome="server_error") == 1
    assert metric(m, "crux_requests_total", target=t, api="daily", outcome="timeout") == 1


async def test_polls_stop_for_the_day_once_the_period_changed(google: FakeServer) -> None:
    clock = [datetime(2026, 2, 9, 1, tzinfo=UTC).timestamp()]
    config = crux_config(google, form_factors=["PHONE"])
    job = daily_job(config, clock)
    google.route("POST", DAILY, Reply(200, daily_body(last=(2026, 2, 6))))
    await job.collect()  # first answer: whether it is today's is unknown
    clock[0] += 3600
    await job.collect()  # same period: keep asking
    assert len(google.seen(DAILY)) == 2
    google.route("POST", DAILY, Reply(200, daily_body(last=(2026, 2, 7), lcp_p75=2000)))
    clock[0] += 3600
    samples = await job.collect()  # the period changed: today's update is in
    assert len(google.seen(DAILY)) == 3
    for _ in range(5):
        clock[0] += 3600
        assert await job.collect() == samples  # re-used, not asked again today
    assert len(google.seen(DAILY)) == 3
    clock[0] = datetime(2026, 2, 10, 0, 30, tzinfo=UTC).timestamp()
    await job.collect()  # a new UTC day
    assert len(google.seen(DAILY)) == 4


async def test_origin_losing_its_data(google: FakeServer) -> None:
    clock = [datetime(2026, 2, 9, 1, tzinfo=UTC).timestamp()]
    job = daily_job(crux_config(google, form_factors=["PHONE"]), clock)
    google.route("POST", DAILY, Reply(200, daily_body()))
    h = Harness()
    await h.run(job)
    google.route("POST", DAILY, NOT_FOUND)
    clock[0] += 3600
    assert (await h.run(job)).ok
    m = h.parsed()
    assert metric(m, "crux_data_available", **LABELS, form_factor="PHONE") == 0
    assert metric(m, "crux_p75_seconds", **LABELS, form_factor="PHONE", metric="lcp") is None


async def test_ratings_come_from_thresholds_not_bin_positions(google: FakeServer) -> None:
    # 2020-era FCP bins (1000/3000 ms) do not line up with the 1.8 s threshold
    fcp = {
        "histogram": [
            {"start": 0, "end": 1000, "density": 0.5},
            {"start": 1000, "end": 3000, "density": 0.3},
            {"start": 3000, "density": 0.2},
        ],
        "percentiles": {"p75": 1900},
    }
    google.route("POST", DAILY, Reply(200, daily_body(extra={"first_contentful_paint": fcp})))
    lcp = {"good": "2s", "poor": "2800ms"}
    h = Harness()
    await h.run(daily_job(crux_config(google, form_factors=["PHONE"], thresholds={"lcp": lcp})))
    m = h.parsed()
    labels = {**LABELS, "form_factor": "PHONE"}
    assert metric(m, "crux_good_ratio", **labels, metric="fcp") == pytest.approx(0.5 + 0.3 * 0.4)
    assert metric(m, "crux_poor_ratio", **labels, metric="fcp") == 0.2
    assert metric(m, "crux_p75_rating", **labels, metric="fcp", rating="needs-improvement") == 1
    # configured LCP thresholds: 2 s falls inside the first bin (0-2.5 s)
    assert metric(m, "crux_good_ratio", **labels, metric="lcp") == pytest.approx(0.9343 * 0.8)
    assert metric(m, "crux_p75_rating", **labels, metric="lcp", rating="poor") == 1
    # the 2.8 s poor threshold falls in the 2.5-4 s bin: the open last bin counts fully
    assert metric(m, "crux_poor_ratio", **labels, metric="lcp") == pytest.approx(
        0.0418 * 1.2 / 1.5 + 0.0239
    )


async def test_malformed_answers_are_errors_not_guesses(google: FakeServer) -> None:
    google.route("POST", DAILY, Reply(200, {"record": {"key": {}}}))
    snap = await Harness().run(daily_job(crux_config(google, form_factors=["PHONE"])))
    assert not snap.ok and "record.metrics" in (snap.error or "")
    google.route("POST", DAILY, Reply(200, "not json"))
    snap = await Harness().run(daily_job(crux_config(google, form_factors=["PHONE"])))
    assert not snap.ok and "not JSON" in (snap.error or "")


async def test_api_key_never_leaks(google: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    echo = lambda seen: Reply(  # noqa: E731 - an upstream that echoes the request URL
        400,
        google_error(
            400,
            "INVALID_ARGUMENT",
            f"bad request for {DAILY}?key={seen.query['key'][0]} x {API_KEY}",
        ),
    )
    google.route("POST", DAILY, echo)
    config = crux_config(google, form_factors=["PHONE"])
    h = Harness()
    snap = await h.run(daily_job(config))
    assert not snap.ok and snap.error and "INVALID_ARGUMENT" in snap.error
    assert API_KEY not in snap.error
    # a refused connection, whose error could name the URL
    closed = crux_config(google, form_factors=["PHONE"], endpoint="http://127.0.0.1:9/v1")
    snap2 = await h.run(daily_job(closed))
    assert not snap2.ok and snap2.error and API_KEY not in snap2.error
    check = await CruxSource(RecordKey("origin", "https://example.com"), config).check()
    assert not check.ok and API_KEY not in check.detail
    out = capsys.readouterr()
    assert API_KEY not in out.out + out.err
    assert API_KEY not in h.exposition.render().decode()


async def test_history_series_gaps_and_change_ratio(google: FakeServer) -> None:
    lcp: list[Any] = [2000] * 25
    lcp[-1] = 2500  # latest: 25% worse than a week ago and than four weeks ago
    lcp[3] = None  # an ineligible period
    lcp[-3] = "NaN"
    cls: list[Any] = ["0.05"] * 25
    cls[-5] = None  # CLS four weeks ago missing: no monthly change ratio for CLS
    cls[-1] = "0.10"
    google.route("POST", HISTORY, Reply(200, history_body(lcp, cls)))
    config = crux_config(google, form_factors=["PHONE"])
    source = CruxSource(RecordKey("origin", "https://example.com"), config, backoff=FAST)
    assert source.history is not None
    h = Harness()
    snap = await h.run(source.history)
    assert snap.ok, snap.error
    body = google.seen(HISTORY)[0].json()
    assert body["collectionPeriodCount"] == 25 and body["formFactor"] == "PHONE"
    m = h.parsed()
    labels = {**LABELS, "form_factor": "PHONE"}
    assert metric(m, "crux_history_p75_seconds", **labels, metric="lcp", periods_ago="0") == 2.5
    assert metric(m, "crux_history_p75_seconds", **labels, metric="lcp", periods_ago="1") == 2.0
    assert metric(m, "crux_history_p75_seconds", **labels, metric="lcp", periods_ago="2") is None
    assert metric(m, "crux_history_p75_seconds", **labels, metric="lcp", periods_ago="21") is None
    assert metric(m, "crux_history_p75_seconds", **labels, metric="lcp", periods_ago="24") == 2.0
    assert metric(m, "crux_history_cls_p75", **labels, periods_ago="0") == 0.1
    assert metric(m, "crux_history_cls_p75", **labels, periods_ago="4") is None
    assert metric(m, "crux_p75_change_ratio", **labels, metric="lcp", weeks="1") == 0.25
    assert metric(m, "crux_p75_change_ratio", **labels, metric="lcp", weeks="4") == 0.25
    assert metric(m, "crux_p75_change_ratio", **labels, metric="cls", weeks="1") == 1.0
    assert metric(m, "crux_p75_change_ratio", **labels, metric="cls", weeks="4") is None
    # INP all null: no points and no ratio, never 0
    assert not [k for k in m if dict(k[1]).get("metric") == "inp"]
    assert not any(math.isnan(v) for v in m.values())
    end = datetime(2025, 8, 17) + timedelta(weeks=24, days=28)
    expected_end = datetime(end.year, end.month, end.day, tzinfo=PST).timestamp()
    assert metric(m, "crux_history_period_end_timestamp_seconds", **labels) == expected_end


async def test_history_not_found_and_mismatched_lengths(google: FakeServer) -> None:
    config = crux_config(google, form_factors=["PHONE"])
    source = CruxSource(RecordKey("origin", "https://example.com"), config, backoff=FAST)
    assert source.history is not None
    google.route("POST", HISTORY, NOT_FOUND)
    h = Harness()
    assert (await h.run(source.history)).ok
    assert metric(h.parsed(), "crux_history_data_available", **LABELS, form_factor="PHONE") == 0
    broken = history_body([2000] * 24, ["0.05"] * 25)
    google.route("POST", HISTORY, Reply(200, broken))
    snap = await h.run(source.history)
    assert not snap.ok and "24 p75s for 25 periods" in (snap.error or "")


async def test_daemon_exports_crux_on_metrics(google: FakeServer) -> None:
    google.route("POST", DAILY, Reply(200, daily_body(inp=True)))
    google.route("POST", HISTORY, Reply(200, history_body([2000] * 25, ["0.05"] * 25)))
    config = make_config(
        targets={
            "crux": {
                "api_key": API_KEY,
                "origins": ["https://example.com"],
                "endpoint": f"{google.url}/v1",
                "form_factors": ["DESKTOP"],
            }
        }
    )
    async with run_daemon(config) as d:

        async def scraped() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            text = (await d.get("/metrics")).text
            m = parse_exposition(text)
            done = metric(m, "crux_history_data_available", **LABELS, form_factor="DESKTOP")
            return (
                m
                if done is not None and metric(m, "crux_cls_p75", **LABELS, form_factor="DESKTOP")
                else None
            )

        m = await wait_for(scraped)
    labels = {**LABELS, "form_factor": "DESKTOP"}
    assert metric(m, "crux_p75_seconds", **labels, metric="inp") == 0.15
    assert metric(m, "crux_good_ratio", **labels, metric="inp") == 0.8
    assert metric(m, "crux_p75_change_ratio", **labels, metric="lcp", weeks="4") == 0.0


def test_config_rules() -> None:
    from monitor.kernel.config.loading import ConfigError

    def problems(**crux: Any) -> str:
        with pytest.raises(ConfigError) as info:
            make_config(targets={"crux": {"api_key": API_KEY, **crux}})
        return str(info.value)

    assert "at least one origin or url" in problems()
    assert "no path" in problems(origins=["https://example.com/shop"])
    assert "10m" in problems(origins=["https://example.com"], interval="5m")
    assert "form_factor" in problems(origins=["https://example.com"], form_factors=["mobile"])
    assert "compare_weeks" in problems(origins=["https://example.com"], compare_weeks=[30])
    assert "good < poor" in problems(
        origins=["https://example.com"], thresholds={"lcp": {"good": "4s", "poor": "2s"}}
    )
    text = problems(origins=["https://example.com"], interval="5m")
    assert API_KEY not in text


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        (
            Reply(400, google_error(400, "INVALID_ARGUMENT", "Invalid value at 'form_factor'")),
            "bad_request",
        ),
        (QUOTA, "rate_limited"),
        (Reply(500, google_error(500, "INTERNAL", "backend error")), "server_error"),
        (Reply(200, {}, delay=3.0), "timeout"),
    ],
)
async def test_history_failures_keep_the_last_series(
    google: FakeServer, failure: Reply, outcome: str
) -> None:
    config = crux_config(google, form_factors=["PHONE"], max_retries=0)
    source = CruxSource(RecordKey("origin", "https://example.com"), config, backoff=FAST)
    assert source.history is not None
    google.route("POST", HISTORY, Reply(200, history_body([2000] * 25, ["0.05"] * 25)))
    h = Harness()
    assert (await h.run(source.history)).ok
    google.route("POST", HISTORY, failure)
    snap = await h.run(source.history)
    assert not snap.ok
    m = h.parsed()
    labels = {**LABELS, "form_factor": "PHONE"}
    assert metric(m, "crux_history_p75_seconds", **labels, metric="lcp", periods_ago="0") == 2.0
    assert (
        metric(m, "crux_requests_total", target=LABELS["target"], api="history", outcome=outcome)
        == 1
    )
    assert len(google.seen(HISTORY)) == 2  # never retried (max_retries 0 for the 429)


def test_environment() -> None:
    from monitor.app.config import validate
    from monitor.app.env_config import config_from_environment
    from monitor.kernel.config.loading import ConfigError

    def targets(**env: str) -> dict[str, Any]:
        doc = config_from_environment(env)
        return dict(doc.get("targets", {}))

    both = targets(CRUX_API_KEY=API_KEY, MONITOR_ORIGINS="https://a.example, https://b.example")
    assert both["crux"] == {
        "origins": ["https://a.example", "https://b.example"],
        "api_key": API_KEY,
    }
    psi_only = targets(CRUX_API_KEY=API_KEY, MONITOR_PSI_URLS="https://a.example/")
    assert "crux" not in psi_only and psi_only["psi"]["api_key"] == API_KEY
    for env, problem in (
        ({"CRUX_API_KEY": API_KEY}, "at least one origin"),
        ({"MONITOR_ORIGINS": "https://a.example"}, "targets.crux.api_key: required key is missing"),
    ):
        with pytest.raises(ConfigError) as info:
            validate(config_from_environment(env), expand=False)
        assert problem in str(info.value)
        assert API_KEY not in str(info.value)

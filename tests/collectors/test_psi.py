"""PageSpeed Insights lab collector against a local server speaking PSI v5."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import make_config
from support import metric
from web_fakes import PAGE, FakeServer, Harness, Reply, psi_body

from collectors.psi import PsiJob, PsiSource, sources
from collectors.psi.config import PsiConfig
from monitor.app.env_config import config_from_environment
from monitor.kernel.config.loading import ConfigError

API_KEY = "AIzaFAKE-psi-key-9876543210"
RUN = "/pagespeedonline/v5/runPagespeed"


@pytest.fixture
def google() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def psi_config(server: FakeServer, **overrides: Any) -> PsiConfig:
    doc = {
        "api_key": API_KEY,
        "urls": [PAGE],
        "endpoint": f"{server.url}/pagespeedonline/v5",
        **overrides,
    }
    config = make_config(targets={"psi": doc}).targets.psi
    assert config is not None
    return config


def job_at(config: PsiConfig, clock: list[float]) -> PsiJob:
    return PsiJob(config, PAGE, wall_clock=lambda: clock[0])


async def test_lab_values_are_exact(google: FakeServer) -> None:
    google.route("GET", RUN, Reply(200, psi_body()))
    clock = [1_770_000_000.0]
    h = Harness()
    job = job_at(psi_config(google), clock)
    snap = await h.run(job)
    assert snap.ok, snap.error
    m = h.parsed()
    for strategy in ("mobile", "desktop"):
        s = {"target": PAGE, "strategy": strategy}
        assert metric(m, "psi_lab_seconds", **s, metric="lcp") == 2.4
        assert metric(m, "psi_lab_seconds", **s, metric="fcp") == 1.2005
        assert metric(m, "psi_lab_seconds", **s, metric="tbt") == 0.15
        assert metric(m, "psi_lab_seconds", **s, metric="speed_index") == 3.1
        assert metric(m, "psi_lab_seconds", **s, metric="ttfb") == 0.42
        assert metric(m, "psi_lab_seconds", **s, metric="tti") is None  # "NaN" is no value
        assert metric(m, "psi_lab_cls", **s) == 0.0006
        assert metric(m, "psi_performance_score", **s) == 0.85
        assert metric(m, "psi_last_success_timestamp_seconds", **s) == clock[0]
        assert metric(m, "psi_runs_total", **s) == 1
    queries = sorted((r.query["strategy"][0], r.query) for r in google.seen(RUN))
    assert [q[0] for q in queries] == ["desktop", "mobile"]
    for _, query in queries:
        assert query["url"] == [PAGE]
        assert query["category"] == ["performance"]
        assert query["key"] == [API_KEY]
    await job.close()


async def test_failed_runs_count_by_reason_and_keep_last_good(google: FakeServer) -> None:
    clock = [1_770_000_000.0]
    config = psi_config(google, strategies=["mobile"]).model_copy(update={"timeout": 1.0})
    job = job_at(config, clock)
    job.timeout = 3.0
    h = Harness()
    google.route("GET", RUN, Reply(200, psi_body()))
    assert (await h.run(job)).ok
    good_at = clock[0]
    failures = [
        (
            Reply(
                500,
                {
                    "error": {
                        "code": 500,
                        "message": "Lighthouse returned error: FAILED_DOCUMENT_REQUEST.",
                    }
                },
            ),
            "server_error",
        ),
        (Reply(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}), "rate_limited"),
        (Reply(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}}), "bad_request"),
        (
            Reply(
                200,
                psi_body(
                    lcp_ms=9999,
                    score=None,
                    runtimeError={"code": "NO_FCP", "message": "The page did not paint"},
                ),
            ),
            "runtime_error",
        ),
        (Reply(200, psi_body(), delay=2.0), "timeout"),
        (Reply(200, "<html>oops</html>"), "invalid_response"),
        (Reply(404, "<html>Not Found</html>"), "not_found"),  # a wrong endpoint
    ]
    errors = []
    for reply, reason in failures:
        google.route("GET", RUN, reply)
        clock[0] += 6 * 3600
        before = len(google.seen(RUN))
        snap = await h.run(job)
        assert not snap.ok, reason
        errors.append(snap.error or "")
        assert len(google.seen(RUN)) == before + 1  # never retried within a run
        m = h.parsed()
        s = {"target": PAGE, "strategy": "mobile"}
        assert metric(m, "psi_run_errors_total", **s, reason=reason) == 1, reason
        assert metric(m, "psi_lab_seconds", **s, metric="lcp") == 2.4
        assert metric(m, "psi_performance_score", **s) == 0.85
        assert metric(m, "psi_last_success_timestamp_seconds", **s) == good_at
    assert "FAILED_DOCUMENT_REQUEST" in errors[0] and "NO_FCP: The page did not paint" in errors[3]
    assert metric(m, "psi_runs_total", **s) == 1 + len(failures)
    await job.close()


async def test_job_deadline_counts_a_timeout(google: FakeServer) -> None:
    config = psi_config(google, strategies=["desktop"])
    job = PsiJob(config, PAGE)
    job.timeout = 0.5  # the runner's backstop fires before the request timeout
    google.route("GET", RUN, Reply(200, psi_body(), delay=2.0))
    h = Harness()
    snap = await h.run(job)
    assert not snap.ok and "timed out" in (snap.error or "")
    m = h.parsed()
    assert metric(m, "psi_run_errors_total", target=PAGE, strategy="desktop", reason="timeout") == 1
    await job.close()


async def test_missing_performance_category_is_a_failure(google: FakeServer) -> None:
    body = psi_body()
    del body["lighthouseResult"]["categories"]
    google.route("GET", RUN, Reply(200, body))
    h = Harness()
    job = PsiJob(psi_config(google, strategies=["mobile"]), PAGE)
    snap = await h.run(job)
    assert not snap.ok and "NO_PERFORMANCE_CATEGORY" in (snap.error or "")
    assert (
        metric(h.parsed(), "psi_lab_seconds", target=PAGE, strategy="mobile", metric="lcp") is None
    )
    await job.close()


async def test_api_key_never_leaks(google: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    echo = lambda seen: Reply(  # noqa: E731 - an upstream that echoes the request URL
        400, {"error": {"code": 400, "message": f"bad url {RUN}?key={seen.query['key'][0]}"}}
    )
    google.route("GET", RUN, echo)
    h = Harness()
    job = PsiJob(psi_config(google, strategies=["mobile"]), PAGE)
    snap = await h.run(job)
    assert not snap.ok and snap.error and "bad url" in snap.error
    assert API_KEY not in snap.error
    out = capsys.readouterr()
    assert API_KEY not in out.out + out.err
    await job.close()


async def test_sources_and_check(google: FakeServer) -> None:
    config = make_config(
        targets={"psi": {"api_key": API_KEY, "urls": [PAGE, "https://example.com/shop"]}}
    )
    srcs = sources(config.targets.psi, config.interval)
    assert [s.name for s in srcs] == [PAGE, "https://example.com/shop"]
    assert all(isinstance(s, PsiSource) for s in srcs)
    result = await srcs[0].check()
    assert result.ok and "not run by check" in result.detail
    assert google.requests == []  # check never starts a slow Lighthouse run
    assert srcs[0].jobs()[0].timeout > 90


def test_config_rules() -> None:
    def problems(**psi: Any) -> str:
        with pytest.raises(ConfigError) as info:
            make_config(targets={"psi": psi})
        return str(info.value)

    assert "api_key: required" in problems(urls=[PAGE])
    assert "60s" in problems(api_key=API_KEY, urls=[PAGE], timeout="30s")
    assert "30m" in problems(api_key=API_KEY, urls=[PAGE], interval="10m")
    assert "strategies" in problems(api_key=API_KEY, urls=[PAGE], strategies=["tablet"])
    env = config_from_environment(
        {"MONITOR_PSI_URLS": f"{PAGE}, https://example.com/a", "CRUX_API_KEY": API_KEY}
    )
    assert env["targets"]["psi"] == {"urls": [PAGE, "https://example.com/a"], "api_key": API_KEY}

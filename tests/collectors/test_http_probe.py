"""HTTP probes against local HTTP and HTTPS servers, and the SLO burn-rate arithmetic."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, run_daemon
from support import free_port, metric, parse_exposition, require_binary, wait_for
from web_fakes import FakeServer, Harness, Reply, self_signed_cert, tls_server

from collectors.http_probe import HttpProbeSource, ProbeJob, sources
from collectors.http_probe.cert import not_after
from collectors.http_probe.config import HttpProbeTarget
from collectors.http_probe.slo import SloTracker
from monitor.kernel.config.loading import ConfigError


@pytest.fixture
def site() -> Iterator[FakeServer]:
    with FakeServer() as server:
        server.route("GET", "/", Reply(200, "<h1>OK healthy</h1>"))
        server.route("HEAD", "/", Reply(200))
        server.route("GET", "/boom", Reply(500, "Internal Server Error"))
        server.route("GET", "/slow", Reply(200, "late", delay=2.0))
        server.route("GET", "/loop", Reply(302, headers={"Location": "/loop"}))
        server.route("GET", "/a", Reply(301, headers={"Location": "/b"}))
        server.route("GET", "/b", Reply(302, headers={"Location": "/"}))
        yield server


def target(url: str, **overrides: Any) -> HttpProbeTarget:
    probe = make_config(targets={"http": [{"name": "site", "url": url, **overrides}]})
    return probe.targets.http[0]


async def run_probe(t: HttpProbeTarget, h: Harness | None = None) -> dict[Any, float]:
    h = h or Harness()
    job = ProbeJob(t, 30.0)
    try:
        snap = await h.run(job)
    finally:
        await job.close()
    assert snap.ok, snap.error  # a failed probe is data, not a failed collection
    return h.parsed()


def value(m: dict[Any, float], name: str, **labels: str) -> float | None:
    return metric(m, name, target="site", **labels)


async def test_successful_probe(site: FakeServer) -> None:
    m = await run_probe(target(site.url + "/", body_contains="healthy"))
    assert value(m, "probe_success") == 1
    assert value(m, "probe_http_status_code") == 200
    assert value(m, "probe_http_ssl") == 0
    assert value(m, "probe_http_redirects") == 0
    duration = value(m, "probe_duration_seconds")
    assert duration is not None and duration > 0
    for phase in ("connect", "processing", "transfer"):
        seconds = value(m, "probe_http_duration_seconds", phase=phase)
        assert seconds is not None and 0 <= seconds <= duration, phase
    assert value(m, "probe_http_duration_seconds", phase="tls") is None
    assert value(m, "probe_ssl_earliest_cert_expiry") is None
    assert value(m, "probe_slo_objective_ratio") == 0.999


async def test_fresh_connection_per_probe(site: FakeServer) -> None:
    job = ProbeJob(target(site.url + "/"), 30.0)
    h = Harness()
    for _ in range(2):
        await h.run(job)
        assert value(h.parsed(), "probe_http_duration_seconds", phase="connect") is not None
    await job.close()


async def test_body_and_status_checks(site: FakeServer) -> None:
    m = await run_probe(target(site.url + "/", body_contains="unhealthy"))
    assert value(m, "probe_success") == 0
    assert value(m, "probe_http_status_code") == 200
    assert value(m, "probe_failures_total", reason="body") == 1
    m = await run_probe(target(site.url + "/boom"))
    assert value(m, "probe_success") == 0
    assert value(m, "probe_http_status_code") == 500
    assert value(m, "probe_failures_total", reason="status") == 1
    m = await run_probe(target(site.url + "/boom", expected_status=[500, 503]))
    assert value(m, "probe_success") == 1


async def test_head(site: FakeServer) -> None:
    m = await run_probe(target(site.url + "/", method="HEAD"))
    assert value(m, "probe_success") == 1
    assert [r.method for r in site.requests] == ["HEAD"]


async def test_slow_answer_times_out(site: FakeServer) -> None:
    m = await run_probe(target(site.url + "/slow", timeout="500ms"))
    assert value(m, "probe_success") == 0
    assert value(m, "probe_http_status_code") == 0
    assert value(m, "probe_failures_total", reason="timeout") == 1
    duration = value(m, "probe_duration_seconds")
    assert duration is not None and duration < 2.0  # did not wait for the slow server


async def test_redirects(site: FakeServer) -> None:
    m = await run_probe(target(site.url + "/a"))
    assert value(m, "probe_success") == 1
    assert value(m, "probe_http_redirects") == 2
    assert value(m, "probe_http_status_code") == 200
    m = await run_probe(target(site.url + "/loop", max_redirects=3))
    assert value(m, "probe_success") == 0
    assert value(m, "probe_failures_total", reason="redirects") == 1
    assert len(site.seen("/loop")) == 4  # the first request and three redirects
    m = await run_probe(target(site.url + "/a", max_redirects=0))
    assert value(m, "probe_success") == 0
    assert value(m, "probe_http_status_code") == 301
    m = await run_probe(target(site.url + "/a", max_redirects=0, expected_status=[301]))
    assert value(m, "probe_success") == 1


async def test_connection_refused() -> None:
    m = await run_probe(target(f"http://127.0.0.1:{free_port()}/"))
    assert value(m, "probe_success") == 0
    assert value(m, "probe_failures_total", reason="connect") == 1


@pytest.fixture(scope="module")
def cert_3_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    openssl = require_binary("openssl")
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"), 3, openssl)
    out = subprocess.run(
        [openssl, "x509", "-noout", "-enddate", "-in", str(cert)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return cert, key, float(ssl.cert_time_to_seconds(out.strip().removeprefix("notAfter=")))


async def test_self_signed_certificate_expiring_in_3_days(
    cert_3_days: tuple[Path, Path, float],
) -> None:
    cert, key, expiry = cert_3_days
    with tls_server(cert, key) as server:
        server.route("GET", "/", Reply(200, "secure"))
        for options in ({"tls_verify": False}, {"ca_file": str(cert)}):
            m = await run_probe(target(server.url + "/", **options))
            assert value(m, "probe_success") == 1, options
            assert value(m, "probe_http_ssl") == 1
            assert value(m, "probe_ssl_earliest_cert_expiry") == expiry
            left = value(m, "probe_tls_cert_expiry_seconds")
            assert left is not None and 2.9 * 86400 < left <= 3 * 86400
            assert value(m, "probe_http_duration_seconds", phase="tls") is not None
        m = await run_probe(target(server.url + "/"))  # the system CAs do not know it
        assert value(m, "probe_success") == 0
        assert value(m, "probe_failures_total", reason="tls") == 1
        assert value(m, "probe_ssl_earliest_cert_expiry") is None
        result = await HttpProbeSource(target(server.url + "/", tls_verify=False), 30).check()
        assert result.ok and "certificate expires in 3.0 days" in result.detail


def test_not_after_reads_utc_and_generalized_time(tmp_path: Path) -> None:
    openssl = require_binary("openssl")
    for days in (3, 40000):  # 40000 days reach past 2049: GeneralizedTime
        directory = tmp_path / str(days)
        directory.mkdir()
        cert, _ = self_signed_cert(directory, days, openssl)
        der = ssl.PEM_cert_to_DER_cert(cert.read_text())
        out = subprocess.run(
            [openssl, "x509", "-noout", "-enddate", "-in", str(cert)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        expected = ssl.cert_time_to_seconds(out.strip().removeprefix("notAfter="))
        assert not_after(der).timestamp() == expected


def test_burn_rates_and_low_traffic() -> None:
    # a probe every 30 s for 3 h against 99.9%: 360 results
    slo = SloTracker(0.999, 30 * 86400, min_samples=5, interval=30, started=0.0)
    t = 0.0
    for _ in range(360):
        t += 30
        slo.record(t, True)
    status = slo.status(t)
    assert status.samples[3600] == 120 and status.samples[300] == 10
    assert status.burn_rates[3600] == 0 and not any(status.alerts.values())
    # one failure: 10% of the 5 m window, 0.83% of the hour; no page at 99.9%
    t += 30
    slo.record(t, False)
    status = slo.status(t)
    assert status.burn_rates[300] == pytest.approx(0.1 / 0.001)
    assert status.burn_rates[3600] == pytest.approx((1 / 120) / 0.001)
    page = {a.label: v for a, v in status.alerts.items() if a.severity == "page"}
    assert page == {"1h/5m": False, "6h/30m": False}
    # the 3 d window holds only the 3 h since start: 1/361 burns at 2.8 > 1, a ticket
    ticket = {a.label: v for a, v in status.alerts.items() if a.severity == "ticket"}
    assert ticket == {"1d/2h": False, "3d/6h": True}
    # a second failure within the hour: 1.67% > 14.4 x 0.1%: page on 1h/5m
    t += 30
    slo.record(t, False)
    status = slo.status(t)
    page = {a.label: v for a, v in status.alerts.items() if a.severity == "page"}
    assert page["1h/5m"] is True
    # 6 h window (all 362 results since start): 2/362 burns at 5.5, under 6
    assert status.burn_rates[6 * 3600] == pytest.approx((2 / 362) / 0.001)
    assert page["6h/30m"] is False
    # budget: 30 d at 30 s is 86400 probes, 86.4 allowed failures, 2 used
    assert status.budget_remaining == pytest.approx(1 - 2 / 86.4)
    assert status.observed == t


def test_one_failure_pages_at_four_nines() -> None:
    slo = SloTracker(0.9999, 30 * 86400, min_samples=5, interval=30, started=0.0)
    t = 0.0
    for i in range(120):
        t += 30
        slo.record(t, i != 119)
    status = slo.status(t)
    page = {a.label: v for a, v in status.alerts.items() if a.severity == "page"}
    assert page["1h/5m"] is True  # 1/120 = 0.83% against a 0.01% budget: burn 83


def test_min_samples_hold_back_thin_windows() -> None:
    slo = SloTracker(0.999, 30 * 86400, min_samples=6, interval=60, started=0.0)
    for i in range(1, 31):
        slo.record(i * 60.0, False)
    status = slo.status(30 * 60.0)
    assert status.samples[300] == 5  # one probe a minute: never 6 in 5 minutes
    assert 300 not in status.burn_rates
    assert status.burn_rates[1800] == pytest.approx(1 / 0.001)
    labels = {a.label: v for a, v in status.alerts.items()}
    assert "1h/5m" not in labels  # a pair needs both windows reported
    assert labels["6h/30m"] is True


async def test_exported_slo_series(site: FakeServer) -> None:
    clock = [1000.0]
    t = target(site.url + "/boom", slo={"objective": 0.99, "min_samples": 2})
    job = ProbeJob(t, 30.0, monotonic=lambda: clock[0])
    h = Harness()
    for _ in range(3):
        clock[0] += 30
        await h.run(job)
    await job.close()
    m = h.parsed()
    assert value(m, "probe_slo_objective_ratio") == 0.99
    assert value(m, "probe_slo_window_samples", window="5m") == 3
    assert value(m, "probe_slo_error_budget_burn_rate", window="5m") == pytest.approx(100)
    assert value(m, "probe_slo_burn_alert", severity="page", windows="1h/5m") == 1
    assert value(m, "probe_slo_burning", urgency="page") == 1
    assert value(m, "probe_slo_burning", urgency="ticket") == 1
    assert value(m, "probe_slo_error_budget_remaining_ratio") == pytest.approx(1 - 3 / 864)
    assert value(m, "probe_failures_total", reason="status") == 3


async def test_burning_is_any_pair_of_its_urgency(site: FakeServer) -> None:
    """30 minutes of failures, then 5 of successes: the 1h/5m pair has stopped burning,
    the 6h/30m pair has not; the one series to alert on still says "page"."""
    clock = [1000.0]
    site.route("GET", "/flaky", Reply(500, "down"))
    t = target(site.url + "/flaky", slo={"objective": 0.99, "min_samples": 2})
    job = ProbeJob(t, 30.0, monotonic=lambda: clock[0])
    h = Harness()
    try:
        for i in range(70):
            if i == 60:
                site.route("GET", "/flaky", Reply(200, "back"))
            clock[0] += 30
            await h.run(job)
    finally:
        await job.close()
    m = h.parsed()
    assert value(m, "probe_success") == 1
    assert value(m, "probe_slo_burn_alert", severity="page", windows="1h/5m") == 0
    assert value(m, "probe_slo_burn_alert", severity="page", windows="6h/30m") == 1
    assert value(m, "probe_slo_burning", urgency="page") == 1

    healthy = target(site.url + "/", slo={"objective": 0.99, "min_samples": 2})
    job = ProbeJob(healthy, 30.0, monotonic=lambda: clock[0])
    h = Harness()
    try:
        for _ in range(3):
            clock[0] += 30
            await h.run(job)
    finally:
        await job.close()
    m = h.parsed()
    assert value(m, "probe_slo_burning", urgency="page") == 0
    assert value(m, "probe_slo_burning", urgency="ticket") == 0


async def test_daemon_probes_on_schedule(site: FakeServer) -> None:
    config = make_config(
        targets={"http": [{"name": "site", "url": site.url + "/", "interval": "1s"}]}
    )
    assert [s.name for s in sources(config.targets.http, config.interval)] == ["site"]
    async with run_daemon(config) as d:

        async def probed() -> float | None:
            m = parse_exposition((await d.get("/metrics")).text)
            return value(m, "probe_slo_window_samples", window="5m") or None

        assert await wait_for(probed) >= 1
    assert site.seen("/")


def test_config_rules() -> None:
    def problems(**probe: Any) -> str:
        with pytest.raises(ConfigError) as info:
            make_config(targets={"http": [{"name": "x", "url": "https://example.com/", **probe}]})
        return str(info.value)

    assert "HEAD" in problems(method="HEAD", body_contains="ok")
    assert "not HTTP status codes" in problems(expected_status=[99])
    assert "does not exist" in problems(ca_file="/nonexistent.pem")
    assert "objective" in problems(slo={"objective": 1.0})
    assert make_config(targets={"http": [{"name": "x", "url": "https://e.com/", "slo": None}]})


def test_documented_rules_are_valid() -> None:
    import re

    import yaml

    doc = (Path(__file__).parents[2] / "docs" / "web-vitals.md").read_text()
    blocks = re.findall(r"```yaml\n(rules:\n.*?)```", doc, re.S)
    assert len(blocks) == 1
    rules = yaml.safe_load(blocks[0])["rules"]
    config = make_config(rules=rules)
    by_name = {r.name: r for r in config.rules}
    assert by_name["ProbeErrorBudgetBurnFast"].enabled
    assert not by_name["ProbeFailed"].enabled
    assert "LcpRegressed" in by_name


def test_documented_target_examples_are_valid() -> None:
    import re

    import yaml

    from monitor.app.config import validate

    doc = (Path(__file__).parents[2] / "docs" / "web-vitals.md").read_text()
    blocks = re.findall(r"```yaml\n(targets:\n.*?)```", doc, re.S)
    assert len(blocks) == 4
    env = {"CRUX_API_KEY": "k" * 20, "PSI_API_KEY": "p" * 20}
    for block in blocks:
        validate({**yaml.safe_load(block), "state": {"url": "sqlite:///:memory:"}}, environ=env)

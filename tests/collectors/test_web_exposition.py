"""Every web-vitals and probe family passes ``promtool check metrics`` (naming, units,
types), rendered by the real exposition from real collector runs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from conftest import make_config
from support import require_binary
from web_fakes import PAGE, FakeServer, Harness, Reply, daily_body, history_body, psi_body

from collectors.crux import CruxSource
from collectors.crux.client import RecordKey
from collectors.http_probe import ProbeJob
from collectors.psi import PsiJob
from collectors.rum import RumComponent
from collectors.rum.beacon import Report


@pytest.fixture
def google() -> Iterator[FakeServer]:
    with FakeServer() as server:
        server.route("POST", "/v1/records:queryRecord", Reply(200, daily_body(inp=True)))
        server.route(
            "POST",
            "/v1/records:queryHistoryRecord",
            Reply(200, history_body([2000] * 25, ["0.05"] * 25)),
        )
        server.route("GET", "/psi/runPagespeed", Reply(200, psi_body()))
        server.route("GET", "/", Reply(200, "hello"))
        yield server


async def test_promtool_accepts_every_family(google: FakeServer) -> None:
    promtool = require_binary("promtool")
    config = make_config(
        targets={
            "crux": {
                "api_key": "k" * 20,
                "origins": ["https://example.com"],
                "endpoint": f"{google.url}/v1",
            },
            "psi": {"api_key": "k" * 20, "urls": [PAGE], "endpoint": f"{google.url}/psi"},
            "http": [{"name": "home", "url": f"{google.url}/"}],
            "rum": {"allowed_origins": ["https://example.com"]},
        }
    )
    assert config.targets.crux and config.targets.psi and config.targets.rum
    h = Harness()
    crux = CruxSource(RecordKey("origin", "https://example.com"), config.targets.crux)
    assert crux.history is not None
    psi = PsiJob(config.targets.psi, PAGE)
    probe = ProbeJob(config.targets.http[0], 30.0)
    for job in (crux.daily, crux.history, psi, probe):
        assert (await h.run(job)).ok
    await crux.close()
    await psi.close()
    await probe.close()
    rum = RumComponent(config.targets.rum, h.exposition, config.interval)
    for collector in rum.collectors():
        h.exposition.register(collector)
    rum.aggregator.add(Report("lcp", 2.5, "v5-1700000000000-1234567890123", None), "other", 0.0)
    rum.endpoint.rejected["invalid_json"] += 1
    text = h.exposition.render().decode()
    for family in (
        "crux_p75_seconds",
        "crux_history_p75_seconds",
        "psi_lab_seconds",
        "probe_success",
    ):
        assert f"\n{family}{{" in text, family
    assert "webvitals_lcp_seconds_bucket{" in text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr

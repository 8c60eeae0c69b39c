"""/metrics content negotiation with the Accept headers real scrapers send."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from monitor.app.config import validate
from monitor.kernel.exposition import Exposition
from monitor.kernel.http import build_app
from monitor.kernel.negotiation import Format, negotiate, parse_accept
from monitor.kernel.snapshot import Snapshot, counter
from monitor.kernel.snapshot_store import SnapshotStore

PROMETHEUS_2 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_3 = (  # scrape.go acceptHeader with the default scrape_protocols
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
ALLOY = (  # prometheus.scrape's default scrape_protocols, through the same acceptHeader
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3"
)
VMAGENT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"  # lib/promscrape/client.go
CLIENTS = {
    "prometheus 2.x": (PROMETHEUS_2, Format.OPENMETRICS_1_0_0),
    "prometheus 3.x": (PROMETHEUS_3, Format.OPENMETRICS_1_0_0),
    "grafana alloy": (ALLOY, Format.OPENMETRICS_1_0_0),
    "vmagent": (VMAGENT, Format.TEXT),
    "curl": ("*/*", Format.TEXT),
    "no header": (None, Format.TEXT),
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_real_clients(client: str) -> None:
    accept, expected = CLIENTS[client]
    assert negotiate(accept) is expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        # q-values decide, not the order in the header
        ("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5",
         Format.TEXT),
        ("text/plain;q=0.2, application/openmetrics-text; version=1.0.0; q=0.8",
         Format.OPENMETRICS_1_0_0),
        # the version parameter: 0.0.1 is answered as 0.0.1, an unknown one is skipped
        ("application/openmetrics-text;version=0.0.1", Format.OPENMETRICS_0_0_1),
        ("application/openmetrics-text", Format.OPENMETRICS_0_0_1),
        ("application/openmetrics-text;version=2.0.0", Format.TEXT),
        ("application/openmetrics-text;version=2.0.0,application/openmetrics-text;"
         "version=1.0.0;q=0.5", Format.OPENMETRICS_1_0_0),
        ("text/plain;version=1.0.0;escaping=allow-utf-8", Format.TEXT),  # falls through
        # q=0 means not acceptable
        ("application/openmetrics-text;version=1.0.0;q=0,text/plain;q=0.1", Format.TEXT),
        ("APPLICATION/OpenMetrics-Text; Version=1.0.0; charset=utf-8", Format.OPENMETRICS_1_0_0),
        # hostile or malformed headers get the default
        ("application/openmetrics-text;q=abc", Format.TEXT),
        ("application/openmetrics-text;q=nan", Format.TEXT),
        ("application/openmetrics-text;q=2", Format.TEXT),
        (";;;,,,/,a/,/b", Format.TEXT),
        ("text/html," * 10_000 + "application/openmetrics-text", Format.TEXT),  # cut at 32
        ("application/json", Format.TEXT),
    ],
)  # fmt: skip
def test_quality_and_parameters(accept: str, expected: Format) -> None:
    assert negotiate(accept) is expected


def test_specific_ranges_come_before_wildcards_of_equal_quality() -> None:
    ranges = parse_accept("*/*, text/*, text/plain;version=0.0.4")
    assert [(r.type, r.subtype) for r in ranges] == [("text", "plain"), ("text", "*"), ("*", "*")]


CALLS = counter("x_calls_total", "calls")


async def test_endpoint_answers_each_client_with_its_format() -> None:
    store = SnapshotStore()
    store.put(Snapshot("c", "a", (CALLS(3, target="a"),), True, 1.0, 0.01), "success", 15)
    app = build_app(
        exposition=Exposition(store),
        store=store,
        http_config=validate({}, environ={}).http,
        is_running=lambda: True,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for name, (accept, expected) in CLIENTS.items():
            headers = {"Accept": accept} if accept is not None else {}
            response = await client.get("/metrics", headers=headers)
            assert response.headers["content-type"] == expected.content_type, name
            if expected.openmetrics:
                assert response.text.endswith("# EOF\n")
                families = {f.name: f for f in text_string_to_metric_families(response.text)}
                assert families["x_calls"].samples[0].value == 3.0
            else:
                assert "# EOF" not in response.text
                assert "# TYPE x_calls_total counter\n" in response.text
        old = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert old.headers["content-type"] == Format.OPENMETRICS_0_0_1.content_type

"""A real Prometheus scrapes the daemon with its default headers: it asks for OpenMetrics
first, gets the pre-rendered OpenMetrics body, and ingests it (a parse error would mark
the target down). The metadata it keeps (type ``info``, ``# UNIT``) exists only in
OpenMetrics, so it proves which format was parsed."""

from __future__ import annotations

from typing import Any

import httpx
from support import wait_for_sync

from monitor.app.demo.testbed import TestBed


def test_prometheus_ingests_the_openmetrics_exposition(
    pg_bed: TestBed, tmp_path: Any, start_prometheus: Any, start_monitor: Any
) -> None:
    config = {
        "interval": "1s",
        "targets": {"postgres": [{"name": "primary", "url": pg_bed.primary.dsn()}]},
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
    }
    daemon = start_monitor(config=config)
    prom = start_prometheus(
        [{"job_name": "app-monitor", "static_configs": [{"targets": [f"127.0.0.1:{daemon.port}"]}]}]
    )

    def scraped() -> bool:
        up = prom.query('up{job="app-monitor"}')
        pg_up = prom.query('pg_up{job="app-monitor",target="primary"}')
        return bool(up and up[0]["value"][1] == "1" and pg_up and pg_up[0]["value"][1] == "1")

    assert wait_for_sync(scraped, 60)
    # counters arrive with their _total samples, info families as <name>_info
    assert prom.query('monitor_collector_runs_total{job="app-monitor",status="success"}')
    assert prom.query('monitor_build_info{job="app-monitor"}')
    assert prom.query('monitor_event_loop_lag_seconds_count{job="app-monitor"}')

    def metadata(metric: str) -> dict[str, Any]:
        response = httpx.get(
            f"{prom.url}/api/v1/targets/metadata",
            params={"match_target": '{job="app-monitor"}', "metric": metric},
            timeout=10,
        )
        data = response.json()["data"]
        return data[0] if data else {}

    def described() -> bool:
        return bool(metadata("monitor_build"))

    assert wait_for_sync(described, 30)
    assert metadata("monitor_build")["type"] == "info"
    duration = metadata("monitor_collector_duration_seconds")
    assert duration["type"] == "gauge" and duration["unit"] == "seconds"
    runs = metadata("monitor_collector_runs")
    assert runs["type"] == "counter"
    lag = metadata("monitor_event_loop_lag_seconds")
    assert lag["type"] == "histogram" and lag["unit"] == "seconds"
    # nothing was dropped for being malformed
    assert prom.query('scrape_samples_scraped{job="app-monitor"}')[0]["value"][1] != "0"
    assert daemon.stop() == 0

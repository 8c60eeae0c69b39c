"""What validates but cannot work is said by ``monitor check`` before a page finds out."""

from __future__ import annotations

from pathlib import Path

import yaml
from support import run_monitor

from monitor.app.config import validate
from monitor.app.config_warnings import config_warnings

PG = {"postgres": [{"name": "primary", "url": "postgresql://u@127.0.0.1:1/db"}]}
GOOD_KEY = "0123456789abcdef0123456789ABCDEF"


def items(doc: dict[str, object]) -> dict[str, str]:
    return dict(config_warnings(validate(doc, environ={})))


def test_a_routing_key_of_the_wrong_shape_is_warned_without_showing_it() -> None:
    bad = "R0ut1ng-k3y-with-dashes"
    found = items({"targets": PG, "receivers": {"pd": {"type": "pagerduty", "routing_key": bad}}})
    assert "receiver/pd" in found and "32 letters and digits" in found["receiver/pd"]
    assert bad not in found["receiver/pd"]
    ok = {"pd": {"type": "pagerduty", "routing_key": GOOD_KEY}}
    assert "receiver/pd" not in items({"targets": PG, "receivers": ok})


def test_a_rule_on_a_metric_nobody_exports_is_warned() -> None:
    rules = [
        {"name": "Typo", "metric": "pg_conections_utilization_ratio", "threshold": 0.9},
        {"name": "Fine", "metric": "pg_connections_utilization_ratio", "threshold": 0.9},
        {"name": "RedisOnly", "metric": "redis_cache_hit_ratio", "threshold": 0.9, "op": "<"},
        {"name": "PgDown", "for": "2m"},  # a built-in override: its metric is the pack's
        {"name": "Jobs", "metric": "app_jobs_oldest_seconds", "threshold": 600},
    ]
    queries = [
        {
            "name": "jobs",
            "targets": ["primary"],
            "sql": "SELECT 1 AS age",
            "metrics": [{"name": "app_jobs_oldest_seconds", "type": "gauge", "value": "age"}],
        }
    ]
    found = items({"targets": PG, "rules": rules, "queries": queries})
    assert set(found) == {"rules/Typo", "rules/RedisOnly"}
    assert "pg_conections_utilization_ratio" in found["rules/Typo"]
    assert "can never fire" in found["rules/RedisOnly"]


def test_an_empty_configuration_is_warned() -> None:
    assert "targets" in items({})
    assert "targets" not in items({"targets": PG})


async def test_check_prints_the_warnings(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    doc = {
        "http": {"listen": "127.0.0.1:0"},
        "receivers": {"pd": {"type": "pagerduty", "routing_key": "short"}},
        "rules": [{"name": "Custom", "metric": "no_such_metric", "threshold": 1}],
    }
    path.write_text(yaml.safe_dump(doc))
    status, out, _ = await run_monitor("check", "--config-only", "-c", str(path))
    assert status == 0, out
    lines = [line for line in out.splitlines() if line.startswith("warn")]
    assert len(lines) == 3, out
    assert "short" not in out

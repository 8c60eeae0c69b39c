"""``monitor check`` plans every query with EXPLAIN; the config refuses what cannot work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from support import run_monitor

from monitor.app.config import validate
from monitor.kernel.config.loading import ConfigError
from tests.collectors.queries.qtools import query_doc

GAUGE = {"name": "app_value", "value": "v"}


def write_config(tmp_path: Path, dsn: str, *queries: dict[str, Any]) -> str:
    path = tmp_path / "monitor.yml"
    doc = {
        "http": {"listen": "127.0.0.1:0"},
        "state": {"url": "sqlite:///:memory:"},
        "targets": {"postgres": [{"name": "primary", "url": dsn}]},
        "queries": list(queries),
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


async def test_check_catches_a_bad_column_before_start(tmp_path: Path, business_db: str) -> None:
    path = write_config(
        tmp_path,
        business_db,
        query_doc(
            "good",
            "SELECT queue, count(*) AS n FROM jobs GROUP BY queue",
            {"name": "app_jobs", "labels": ["queue"], "value": "n"},
        ),
        query_doc("bad_sql_column", "SELECT nme AS v FROM jobs", {"name": "app_a", "value": "v"}),
        query_doc("bad_table", "SELECT 1 AS v FROM job", {"name": "app_b", "value": "v"}),
        query_doc(
            "bad_metric_column",
            "SELECT queue, count(*) AS n FROM jobs GROUP BY queue",
            {"name": "app_c", "labels": ["queue"], "value": "count"},
        ),
        query_doc("text_value", "SELECT 'x' AS v", {"name": "app_d", "value": "v"}),
        query_doc("writes", "SELECT write_audit() AS v", {"name": "app_e", "value": "v"}),
    )
    status, out, err = await run_monitor("check", "-c", path)
    assert status == 1, out + err
    lines = {line.split()[1]: line for line in out.splitlines() if line.split()[1:]}
    assert lines["query/good/primary"].startswith("ok ")
    assert "EXPLAIN ok" in lines["query/good/primary"]
    assert "columns queue, n" in lines["query/good/primary"]
    assert lines["query/bad_sql_column/primary"].startswith("FAIL")
    assert 'column "nme" does not exist' in lines["query/bad_sql_column/primary"]
    assert lines["query/bad_table/primary"].startswith("FAIL")
    assert 'relation "job" does not exist' in lines["query/bad_table/primary"]
    assert lines["query/bad_metric_column/primary"].startswith("FAIL")
    assert "column(s) count not returned by the query (it returns queue, n)" in out
    # EXPLAIN does not run the query: the function that writes is planned, not called
    assert lines["query/writes/primary"].startswith("ok ")
    warn = [line for line in out.splitlines() if line.startswith("warn") and "text_value" in line]
    assert warn and "value column v is text, not a number" in warn[0]
    assert business_db.split("@")[0] not in out  # the URL never shows


async def test_check_passes_with_good_queries(tmp_path: Path, business_db: str) -> None:
    path = write_config(
        tmp_path,
        business_db,
        query_doc(
            "oldest",
            "SELECT extract(epoch FROM now() - min(created_at)) AS v FROM jobs"
            " WHERE state = %(state)s",
            GAUGE,
            params={"state": "pending"},
        ),
    )
    status, out, err = await run_monitor("check", "-c", path)
    assert status == 0, out + err
    assert "query/oldest/primary" in out


def config_problems(*queries: dict[str, Any]) -> list[str]:
    doc = {
        "targets": {"postgres": [{"name": "primary", "url": "postgresql://u@localhost/app"}]},
        "queries": list(queries),
    }
    with pytest.raises(ConfigError) as info:
        validate(doc, environ={})
    return info.value.problems


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (query_doc("q", "SELECT 1 AS v", GAUGE, targets=["nope"]), "unknown postgres target"),
        (
            query_doc("q", "SELECT 1 AS v", {"name": "app_c", "type": "counter", "value": "v"}),
            "must end in _total",
        ),
        (query_doc("q", "SELECT 1 AS v", {"name": "app_g", "type": "gauge"}), "needs a `value`"),
        (
            query_doc("q", "SELECT 1 AS v", {"name": "monitor_x", "value": "v"}),
            "reserved prefix",
        ),
        (
            query_doc("q", "SELECT 1 AS v", {"name": "app_x", "value": "v", "labels": ["target"]}),
            "set by the daemon",
        ),
        (
            query_doc(
                "q",
                "SELECT 1 AS v",
                {
                    "name": "app_h",
                    "type": "histogram",
                    "buckets": [{"le": 2, "column": "a"}, {"le": 1, "column": "b"}],
                    "count": "v",
                },
            ),
            "strictly increasing",
        ),
        (query_doc("q", "SELECT ${HOST} AS v", GAUGE), "not expanded in sql"),
        (query_doc("q", "SELECT 1 AS v", GAUGE, interval="10s", timeout="10s"), "shorter"),
        (query_doc("q", "SELECT 1 AS v", {"name": "app_i", "type": "info"}), "must end in _info"),
    ],
)
def test_config_refuses(query: dict[str, Any], message: str) -> None:
    problems = config_problems(query)
    assert any(message in p and "queries" in p for p in problems), problems


def test_config_refuses_the_same_metric_from_two_queries() -> None:
    problems = config_problems(
        query_doc("a", "SELECT 1 AS v", GAUGE), query_doc("b", "SELECT 2 AS v", GAUGE)
    )
    assert any("'app_value' of query 'b' is already made by query 'a'" in p for p in problems)

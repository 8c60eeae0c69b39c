"""Sharding: which shard this daemon is, and which targets it owns."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from conftest import make_config

from monitor.app.config import validate
from monitor.app.plugins import build_sources
from monitor.app.shards import ShardSource, heartbeat_alert, live_shards
from monitor.kernel.config.loading import ConfigError
from monitor.kernel.sharding import Shard, ShardConfig, ShardError, owner, resolve_shard


def probes(n: int) -> dict[str, Any]:
    return {"http": [{"name": f"t{i:02d}", "url": f"http://127.0.0.1:9/{i}"} for i in range(n)]}


def test_three_shards_cover_thirty_targets_exactly_once() -> None:
    config = make_config(targets=probes(30))
    owned: Counter[str] = Counter()
    for index in (1, 2, 3):
        sources = build_sources(config, Shard(index, 3))
        (own,) = [s for s in sources if isinstance(s, ShardSource)]
        targets = [s.name for s in sources if s.kind == "http"]
        assert own.job.owned and [s.name for s in own.job.owned] == targets
        assert 5 <= len(targets) <= 15  # a fair share
        owned.update(targets)
    assert owned == Counter(f"t{i:02d}" for i in range(30))


def test_the_assignment_is_stable_across_processes_and_versions() -> None:
    """SHA-256 of ``kind/name``: these values must never change (a change would move
    targets between running shards of different versions)."""
    assert [owner("http", f"t{i:02d}", 3) for i in range(8)] == [3, 2, 2, 1, 3, 2, 3, 2]
    assert owner("postgres", "primary", 1) == 1


def test_one_shard_owns_everything_and_adds_nothing() -> None:
    config = make_config(targets=probes(5))
    assert [s.name for s in build_sources(config, Shard())] == [f"t{i:02d}" for i in range(5)]


def test_a_custom_query_runs_on_the_shard_of_its_postgres_target() -> None:
    pg = [{"name": f"db{i}", "url": f"postgresql://u@127.0.0.1:9/d{i}"} for i in range(6)]
    query = {
        "name": "signups",
        "targets": [p["name"] for p in pg],
        "sql": "SELECT 1 AS n",
        "metrics": [{"name": "app_n", "type": "gauge", "help": "n", "value": "n"}],
    }
    config = make_config(targets={"postgres": pg}, queries=[query])
    for index in (1, 2, 3):
        sources = build_sources(config, Shard(index, 3))
        databases = {s.name for s in sources if s.kind == "postgres"}
        queried = {getattr(s, "target", None) for s in sources if s.kind == "query"}
        assert queried == databases


@pytest.mark.parametrize(
    ("config", "environ", "expected"),
    [
        (None, {}, Shard(1, 1)),
        (None, {"MONITOR_SHARD": "2/4"}, Shard(2, 4)),
        (ShardConfig(index=1, total=2), {"MONITOR_SHARD": " 2 / 2 "}, Shard(2, 2)),
        (ShardConfig(index=3, total=3), {"DYNO": "worker.1"}, Shard(3, 3)),
        (ShardConfig(total=3), {"DYNO": "worker.2"}, Shard(2, 3)),
        (None, {"DYNO": "worker.4", "MONITOR_SHARD_TOTAL": "4"}, Shard(4, 4)),
        (None, {"DYNO": "worker.4"}, Shard(1, 1)),  # one worker: no sharding
    ],
)
def test_which_shard(config: ShardConfig | None, environ: dict[str, str], expected: Shard) -> None:
    assert resolve_shard(config, environ) == expected


@pytest.mark.parametrize(
    "environ",
    [
        {"MONITOR_SHARD": "0/3"},
        {"MONITOR_SHARD": "4/3"},
        {"MONITOR_SHARD": "two"},
        {"MONITOR_SHARD_TOTAL": "3"},  # no index and not on Heroku
        {"MONITOR_SHARD_TOTAL": "3", "DYNO": "worker.7"},
        {"MONITOR_SHARD_TOTAL": "3", "DYNO": "run.1234x"},
        {"MONITOR_SHARD_TOTAL": "-1"},
    ],
)
def test_a_bad_shard_is_refused_with_how_to_fix_it(environ: dict[str, str]) -> None:
    with pytest.raises(ShardError):
        resolve_shard(None, environ)


def test_a_bad_shard_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="MONITOR_SHARD=I/3"):
        validate({"shard": {"total": 3}}, environ={})
    assert validate({"shard": {"total": 3}}, environ={"DYNO": "worker.3"}).shard == ShardConfig(
        total=3
    )
    with pytest.raises(ConfigError, match="above total"):
        validate({"shard": {"index": 4, "total": 3}}, environ={})


def test_heartbeats_are_read_defensively() -> None:
    good = heartbeat_alert(Shard(2, 3), 0.0, 10.0, 3.0)
    assert good["endsAt"] == "1970-01-01T00:00:13.000Z"
    other_total = heartbeat_alert(Shard(1, 4), 0.0, 10.0, 3.0)
    hostile: list[Any] = [
        good,
        other_total,
        None,
        "x",
        {"labels": None},
        {"labels": {"alertname": "MonitorShardHeartbeat", "monitor_shard_total": "3"}},
        {"labels": {**good["labels"], "monitor_shard": "99"}},
        {"labels": {**good["labels"], "monitor_shard": "-1"}},
        {"labels": {**good["labels"], "monitor_shard": "1" * 10_000}},
    ]
    assert live_shards(hostile, 3) == {2}
    assert live_shards({"not": "a list"}, 3) == set()


def test_environment_only_sharded_workers_on_heroku() -> None:
    """On Heroku a sharded worker keeps its own state (one alerting leader per state
    database would silence the other shards) and sends to Alertmanager."""
    from monitor.app.env_config import config_from_environment

    base = {"DYNO": "worker.2", "DATABASE_URL": "postgresql://u:p@db.example/d"}
    single = config_from_environment(base)
    assert single["state"]["url"] == base["DATABASE_URL"]
    sharded = config_from_environment(
        {**base, "MONITOR_SHARD_TOTAL": "3", "ALERTMANAGER_URLS": "http://a:9093, http://b:9093"}
    )
    assert "state" not in sharded
    assert sharded["receivers"]["alertmanager"]["urls"] == ["http://a:9093", "http://b:9093"]
    assert sharded["routes"] == [{"receivers": ["alertmanager"], "continue": True}]
    config = validate(sharded, environ={**base, "MONITOR_SHARD_TOTAL": "3"}, expand=False)
    assert resolve_shard(config.shard, {**base, "MONITOR_SHARD_TOTAL": "3"}) == Shard(2, 3)

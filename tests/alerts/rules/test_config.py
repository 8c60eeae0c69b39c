"""Validation of the alerting configuration: one clear line per problem."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_config

from alerts.rules.ruleset import RuleSet, build_rules
from monitor.app.config import Config
from monitor.kernel.config.loading import ConfigError


def rules_of(config: Config) -> RuleSet:
    return build_rules(config.rules, postgres_targets=len(config.targets.postgres))


def problems(**doc: Any) -> str:
    with pytest.raises(ConfigError) as err:
        rules_of(make_config(**doc))
    return "\n".join(err.value.problems)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"rules": [{"name": "A", "metric": "m", "threshold": 1}] * 2},
            "rule 'A' is defined twice",
        ),
        (
            {"rules": [{"name": "A", "metric": "m", "op": ">", "threshold": 1, "clear": 2}]},
            "clear (2) must not be above threshold (1)",
        ),
        (
            {"rules": [{"name": "A", "metric": "m", "op": "<", "threshold": 1, "clear": 0.5}]},
            "clear (0.5) must not be below threshold (1)",
        ),
        (
            {"rules": [{"name": "A", "metric": "m", "threshold": 1, "labels": {"severity": "x"}}]},
            "labels may not set ['severity']",
        ),
        (
            {"rules": [{"name": "A", "metric": "bad-name", "threshold": 1}]},
            "invalid metric name 'bad-name'",
        ),
        (
            {"rules": [{"name": "A", "metric": "m", "threshold": 1, "for": 5}]},
            "a duration needs a unit",
        ),
        (
            {"rules": [{"name": "A", "metric": "m", "threshold": 1, "severity": "page"}]},
            "rules[0].severity",
        ),
        (
            {"rules": [{"name": "A", "metric": "m", "threshold": 1, "summary": "{% if %}"}]},
            "rules[0].summary: invalid template",
        ),
        (
            {"rules": [{"name": "A", "metric": "m", "threshold": 1, "match_re": {"x": "["}}]},
            "invalid regular expression",
        ),
        (
            {"receivers": {"team": {"type": "slack", "webhook_url": "ftp://x"}}},
            "expected an http:// or https:// URL",
        ),
        (
            {
                "receivers": {
                    "team": {"type": "slack", "webhook_url": "https://h/x", "max_alerts": 100}
                }
            },
            "max_alerts",
        ),
        ({"routes": [{"receivers": ["ghost"]}]}, "unknown receiver 'ghost'"),
        ({"routes": [{"receivers": []}]}, "routes[0].receivers"),
        ({"state": {"url": "mysql://x"}}, "expected sqlite:///path or a postgresql:// URL"),
    ],
)
def test_config_errors(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(**doc)
    assert message in "\n".join(err.value.problems)


def test_rule_pack_errors_name_the_rule() -> None:
    text = problems(
        rules=[
            {"name": "Partial", "threshold": 3},
            {"name": "NoData", "kind": "nodata", "metric": "m"},
            {"name": "Mixed", "metric": "m", "threshold": 1, "window": "5m"},
            {"name": "PgConnectionsHigh", "threshold": 0.5},  # below its built-in clear 0.70
            {"name": "Reg", "kind": "regression", "factor": 3, "clear": 4},
        ]
    )
    assert "rules[0] (Partial): a threshold rule needs `metric`" in text
    assert "rules[1] (NoData): a nodata rule needs `for`" in text
    assert "rules[2] (Mixed): window cannot be used in a threshold rule" in text
    assert "rules[3] (PgConnectionsHigh): clear (0.7) must not be above threshold (0.5)" in text
    assert "rules[4] (Reg): clear (4) must be between 1 and factor (3)" in text


def test_overrides_change_only_what_they_set() -> None:
    ruleset = rules_of(
        make_config(
            rules=[
                {"name": "PgConnectionsHigh", "threshold": 0.8, "clear": 0.7},
                {"name": "ProbeSlow", "enabled": False},
            ]
        )
    )
    rules = {r.name: r for r in ruleset.rules}
    high = rules["PgConnectionsHigh"]
    assert (high.threshold, high.for_, high.severity) == (0.8, 300.0, "warning")  # type: ignore[attr-defined]
    assert "percent" in high.summary
    assert "ProbeSlow" not in rules and "ProbeSlow" in ruleset.disabled
    assert "PgStandbyMissing" in ruleset.disabled  # only one PostgreSQL target (none here)
    two = make_config(
        targets={
            "postgres": [
                {"name": "a", "url": "postgresql://u@localhost/a"},
                {"name": "b", "url": "postgresql://u@localhost/b"},
            ]
        }
    )
    assert "PgStandbyMissing" in {r.name for r in rules_of(two).rules}

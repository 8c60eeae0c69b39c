"""deploy/prometheus: the rule files pass ``promtool check rules`` and their unit tests pass
``promtool test rules``. The scrape config passes ``promtool check config``. The alerting
rules are the built-in pack translated (regenerated here and compared), and every rule
is exercised firing by a unit test."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType

import yaml
from prometheus_support import load_script
from support import require_binary

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))


def promtool(*args: str, cwd: Path = PROM) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "/usr/bin/promtool")
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def generator() -> ModuleType:
    return load_script(PROM / "generate_rules.py")


def test_promtool_check_rules() -> None:
    assert RULE_FILES
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules() -> None:
    assert TEST_FILES
    result = promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config() -> None:
    result = promtool("check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_rules_are_the_builtin_pack_regenerated() -> None:
    committed = (PROM / "rules" / "app-monitor.rules.yml").read_text()
    assert generator().generate() == committed, (
        "the built-in pack changed: run "
        "`uv run python deploy/prometheus/generate_rules.py > "
        "deploy/prometheus/rules/app-monitor.rules.yml` and update the promtool tests"
    )


def test_every_builtin_rule_has_an_alert() -> None:
    from alerts.rules.builtin import builtin_rules

    alerts = {
        rule["alert"]
        for group in yaml.safe_load((PROM / "rules" / "app-monitor.rules.yml").read_text())[
            "groups"
        ]
        for rule in group["rules"]
        if "alert" in rule
    }
    pack = builtin_rules(postgres_targets=2)
    assert alerts == {name for name, rule in pack.items() if rule.enabled}


def test_every_alert_is_tested_firing() -> None:
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fired = {
        case["alertname"]
        for path in TEST_FILES
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - fired == set(), "alerts without a promtool test that expects them to fire"


def test_translation_refuses_what_it_cannot_translate() -> None:
    gen = generator()
    assert gen.template("{{ value | percent }} on {{ labels.db }}") == (
        "{{ $value | humanizePercentage }} on {{ $labels.db }}"
    )
    for bad in ("{{ value | upper }}", "{{ now() }}", "{{ value | bytes | number }}"):
        try:
            gen.template(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was translated")

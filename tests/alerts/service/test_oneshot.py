"""``monitor test-alert``, ``monitor check`` and ``monitor once`` for the alerting part."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from alert_fakes import ROUTING_KEY, SLACK_PATH, Answer, FakeReceiverServer
from support import run_monitor as monitor


def write(tmp_path: Path, doc: dict[str, Any]) -> str:
    doc.setdefault("state", {"url": f"sqlite:///{tmp_path / 'state.db'}"})
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def receivers(pagerduty: FakeReceiverServer, slack: FakeReceiverServer) -> dict[str, Any]:
    return {
        "oncall": {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": pagerduty.url},
        "team": {"type": "slack", "webhook_url": slack.url},
    }


async def test_test_alert_through_each_receiver(
    tmp_path: Path, pagerduty: FakeReceiverServer, slack: FakeReceiverServer
) -> None:
    config = write(tmp_path, {"receivers": receivers(pagerduty, slack)})
    status, out, err = await monitor("test-alert", "-c", config)
    assert status == 0, out + err
    assert out.count("ok    receiver/") == 2
    assert pagerduty.actions() == ["trigger", "resolve"]
    trigger, resolve = pagerduty.bodies()
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["payload"]["summary"].startswith("[TEST] Test alert from app-monitor")
    assert trigger["payload"]["custom_details"]["labels"]["test"] == "true"
    first, second = slack.bodies()
    assert first["text"].startswith("[TEST] [FIRING:1] MonitorTestAlert")
    assert second["text"].startswith("[TEST] [RESOLVED:1] MonitorTestAlert")
    assert ROUTING_KEY not in out + err and SLACK_PATH not in out + err


async def test_test_alert_one_receiver_and_failures(
    tmp_path: Path, pagerduty: FakeReceiverServer, slack: FakeReceiverServer
) -> None:
    config = write(tmp_path, {"receivers": receivers(pagerduty, slack)})
    slack.then(Answer(410, "channel_is_archived"))
    status, out, _ = await monitor("test-alert", "-c", config, "--receiver", "team")
    assert status == 1
    assert "FAIL  receiver/team" in out and "channel_is_archived" in out
    assert pagerduty.requests == []
    status, out, _ = await monitor("test-alert", "-c", config, "--receiver", "nope")
    assert status == 1
    assert "unknown receiver 'nope'" in out


async def test_check_reports_rules_state_and_receivers_without_sending(
    tmp_path: Path, pagerduty: FakeReceiverServer, slack: FakeReceiverServer
) -> None:
    config = write(
        tmp_path,
        {
            "receivers": receivers(pagerduty, slack),
            "rules": [{"name": "ProbeSlow", "enabled": False}],
        },
    )
    status, out, err = await monitor("check", "-c", config)
    assert status == 0, out + err
    disabled = "PgStandbyMissing, ProbeSlow, ProbeErrorBudgetBurnFast, ProbeErrorBudgetBurnSlow"
    assert "alerts/rules" in out and f"disabled: {disabled}" in out
    assert "alerts/state" in out
    assert "ok    receiver/oncall" in out and "ok    receiver/team" in out
    assert pagerduty.requests == []
    assert [r.json() for r in slack.requests] == [{}]  # Slack posts nothing for {}
    assert ROUTING_KEY not in out + err and SLACK_PATH not in out + err
    slack.then(Answer(404, "no_service"))
    status, out, _ = await monitor("check", "-c", config)
    assert status == 1
    assert "FAIL  receiver/team" in out and "no_service" in out


async def test_invalid_rules_exit_2_naming_the_rule(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        {"rules": [{"name": "Nope", "threshold": 1}, {"name": "PgDown", "clear": 3}]},
    )
    for command in ("run", "check", "once"):
        status, _, err = await monitor(command, "-c", config)
        assert status == 2, (command, err)
        assert "rules[0] (Nope): a threshold rule needs `metric`" in err
        assert "rules[1] (PgDown): clear has no meaning with op '=='" in err
    status, _, err = await monitor("check", "--config-only", "-c", config)
    assert status == 2
    config = write(
        tmp_path, {"rules": [{"name": "X", "metric": "m", "threshold": 1, "summary": "{{ broken"}]}
    )
    status, _, err = await monitor("check", "-c", config)
    assert status == 2
    assert "rules[0].summary: invalid template" in err


async def test_once_prints_what_would_fire_and_notifies_only_when_asked(
    tmp_path: Path, pagerduty: FakeReceiverServer, site: FakeReceiverServer
) -> None:
    site.site_status = 500
    doc = {
        "targets": {"http": [{"name": "site", "url": site.url, "timeout": "2s"}]},
        "receivers": {
            "oncall": {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": pagerduty.url}
        },
        "rules": [{"name": "ProbeSlow", "enabled": False}],
    }
    config = write(tmp_path, doc)
    status, out, err = await monitor("once", "-c", config)
    assert status == 0, err
    assert "# alerts: 0 firing, 1 pending" in out
    assert '# PENDING  critical ProbeFailed{target="site"} site is failing its HTTP probe' in out
    assert "(fires after 120s)" in out
    assert pagerduty.requests == []
    status, out, err = await monitor("once", "-c", config, "--format", "json")
    assert status == 0
    assert "alerts: 0 firing, 1 pending" in err  # stdout stays valid JSON
    doc["rules"].append({"name": "ProbeFailed", "for": "0s"})
    config = write(tmp_path, doc)
    status, out, err = await monitor("once", "-c", config, "--notify")
    assert status == 0, err
    assert "# alerts: 1 firing, 0 pending" in out
    assert "# alerts: 1 notification(s) delivered, 0 still queued" in out
    assert pagerduty.actions() == ["trigger"]
    # a second run remembers it was sent; once the site is back it resolves
    status, out, err = await monitor("once", "-c", config, "--notify")
    assert pagerduty.actions() == ["trigger"]
    site.site_status = 200
    status, out, err = await monitor("once", "-c", config, "--notify")
    assert pagerduty.actions() == ["trigger", "resolve"]

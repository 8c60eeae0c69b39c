"""Receivers against local servers speaking the PagerDuty and Slack formats."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from alert_fakes import ROUTING_KEY, Answer, FakeReceiverServer, pagerduty_errors, slack_problem
from conftest import make_config

from alerts.notify.events import Event
from alerts.receivers.base import Outcome, Receiver, retry_after
from alerts.receivers.registry import build_receivers
from alerts.receivers.slack import build_message


def event(action: str = "trigger", **overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "action": action,
        "rule": "PgDown",
        "severity": "critical",
        "labels": {"alertname": "PgDown", "severity": "critical", "target": "primary"},
        "summary": "PostgreSQL primary is not answering",
        "description": "Check the server.",
        "value": 0.0,
        "threshold": 0.0,
        "active_at": 1_767_268_800.0,  # 2026-01-01T12:00:00Z
        "fired_at": 1_767_268_860.0,
        "resolved_at": 1_767_269_400.0 if action == "resolve" else None,
        "dedup_key": "app-monitor/PgDown/target=primary",
        "runbook_url": "https://runbooks.example/pg-down",
        "dashboard_url": None,
        "component": "postgres",
    }
    fields.update(overrides)
    return Event(**fields)


async def receiver(kind: str, server: FakeReceiverServer, **extra: Any) -> Receiver:
    if kind == "pagerduty":
        doc = {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": server.url, **extra}
    else:
        doc = {"type": kind, ("webhook_url" if kind == "slack" else "url"): server.url, **extra}
    config = make_config(receivers={"r": doc})
    receivers, _ = build_receivers(config.receivers, httpx.AsyncClient())
    return receivers["r"]


async def test_exact_pagerduty_trigger_and_resolve(pagerduty: FakeReceiverServer) -> None:
    pd = await receiver("pagerduty", pagerduty)
    assert (await pd.send([event()])).outcome is Outcome.DELIVERED
    assert (await pd.send([event("resolve")])).outcome is Outcome.DELIVERED
    trigger, resolve = pagerduty.bodies()
    assert trigger == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "app-monitor/PgDown/target=primary",
        "payload": {
            "summary": "PostgreSQL primary is not answering",
            "source": "primary",
            "severity": "critical",
            "timestamp": "2026-01-01T12:00:00.000Z",
            "class": "PgDown",
            "component": "postgres",
            "custom_details": {
                "rule": "PgDown",
                "value": 0.0,
                "threshold": 0.0,
                "labels": {"alertname": "PgDown", "severity": "critical", "target": "primary"},
                "description": "Check the server.",
            },
        },
        "links": [{"href": "https://runbooks.example/pg-down", "text": "Runbook"}],
        "client": "app-monitor",
    }
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "app-monitor/PgDown/target=primary",
    }
    assert pagerduty.requests[0].headers["content-type"] == "application/json"


async def test_pagerduty_limits_and_severity_map(pagerduty: FakeReceiverServer) -> None:
    pd = await receiver("pagerduty", pagerduty, severity_map={"warning": "error"})
    long = event(
        severity="warning",
        summary="x" * 2000,
        value=float("nan"),
        labels={"target": "t", "big": "y" * 600_000},
    )
    result = await pd.send([long])
    assert result.outcome is Outcome.DELIVERED, result
    body = pagerduty.bodies()[0]
    assert pagerduty_errors(body) == []
    assert len(body["payload"]["summary"]) == 1024
    assert body["payload"]["severity"] == "error"
    assert "labels" not in body["payload"]["custom_details"]  # dropped: event over 512 KB


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Answer(400, '{"status":"invalid event","errors":["x"]}'), Outcome.PERMANENT),
        (Answer(429, ""), Outcome.RETRY),
        (Answer(500, "oops"), Outcome.RETRY),
        (Answer(503, ""), Outcome.RETRY),
        (Answer(drop=True), Outcome.RETRY),
    ],
)
async def test_pagerduty_error_classes(
    pagerduty: FakeReceiverServer, answer: Answer, outcome: Outcome
) -> None:
    pd = await receiver("pagerduty", pagerduty)
    pagerduty.then(answer)
    result = await pd.send([event()])
    assert result.outcome is outcome
    if answer.status == 429:
        assert result.retry_after == 30.0  # PagerDuty asks for a backoff of a while


async def test_pagerduty_timeout_is_transient(pagerduty: FakeReceiverServer) -> None:
    pd = await receiver("pagerduty", pagerduty, timeout="200ms")
    pagerduty.then(Answer(202, "{}", delay=2.0))
    result = await pd.send([event()])
    assert result.outcome is Outcome.RETRY
    assert "no answer within 0.2s" in result.detail


@pytest.mark.parametrize(
    ("answer", "outcome", "detail"),
    [
        (Answer(400, "invalid_payload"), Outcome.PERMANENT, "HTTP 400 invalid_payload"),
        (Answer(403, "action_prohibited"), Outcome.PERMANENT, "HTTP 403 action_prohibited"),
        (Answer(404, "channel_not_found"), Outcome.PERMANENT, "HTTP 404 channel_not_found"),
        (Answer(410, "channel_is_archived"), Outcome.PERMANENT, "HTTP 410 channel_is_archived"),
        (Answer(404, "no_service"), Outcome.PERMANENT, "HTTP 404 no_service"),
        (Answer(500, "rollup_error"), Outcome.RETRY, "HTTP 500 rollup_error"),
        (Answer(429, "", {"Retry-After": "30"}), Outcome.RETRY, "HTTP 429"),
    ],
)
async def test_slack_error_classes(
    slack: FakeReceiverServer, answer: Answer, outcome: Outcome, detail: str
) -> None:
    team = await receiver("slack", slack)
    slack.then(answer)
    result = await team.send([event()])
    assert (result.outcome, result.detail) == (outcome, detail)
    if answer.status == 429:
        assert result.retry_after == 30.0


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after": "30"}) == 30.0
    assert retry_after({"retry-after": "Thu, 01 Jan 2026 12:01:00 GMT"}, now=1_767_268_800) == 60
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({"retry-after": "999999"}) == 3600.0


async def test_slack_escapes_and_truncates_hostile_labels(slack: FakeReceiverServer) -> None:
    team = await receiver("slack", slack)
    hostile = {
        "alertname": "PgDown",
        "severity": "critical",
        "target": "<!channel> primary",
        "note": "<https://evil.example|click> & <@U123>",
        "emoji": "🔥👩‍👩‍👧🇫🇷" * 400,
        "big": "é" * 5000,
    }
    hostile_event = event(labels=hostile, summary="<!here> value 🔥 " + "z" * 5000)
    assert (await team.send([hostile_event])).outcome is Outcome.DELIVERED
    message = slack.bodies()[0]
    assert slack_problem(message) is None
    raw = json.dumps(message, ensure_ascii=False)
    assert "<!channel>" not in raw and "<!here>" not in raw and "<@U123>" not in raw
    assert "&lt;!channel&gt; primary" in raw
    assert "<https://evil.example" not in raw
    assert "&lt;https://evil.example|click&gt; &amp; &lt;@U123&gt;" in raw
    for block in message["attachments"][0]["blocks"]:
        text = block["text"]["text"]
        assert len(text) <= 3000
        assert "\ufffd" not in text
        # the emoji run is cut after a whole family, never inside it
        assert "👩‍👩‍👧🇫🇷" in text and not text.split("`emoji=")[1].split("`")[0].endswith("‍…")
    assert message["attachments"][0]["color"] == "#D63232"
    assert message["text"].startswith("[FIRING:1] PgDown: &lt;!here&gt;")


def test_slack_message_caps_the_alert_list() -> None:
    events = [
        event(dedup_key=f"k{i}", labels={"target": f"t{i}"}, summary=f"alert {i}")
        for i in range(100)
    ]
    events += [event("resolve", dedup_key=f"r{i}", labels={"target": f"r{i}"}) for i in range(5)]
    message = build_message(events, max_alerts=20)
    assert slack_problem(message) is None
    firing, resolved = message["attachments"]
    assert firing["color"] == "#D63232"
    assert len([b for b in firing["blocks"] if b["type"] == "section"]) == 20
    assert firing["blocks"][-1]["elements"][0]["text"] == "...and 80 more firing"
    assert resolved["color"] == "#36a64f"
    assert resolved["blocks"][-1]["elements"][0]["text"] == "...and 5 more resolved"
    assert message["text"] == "[FIRING:100, RESOLVED:5] PgDown"
    assert message["blocks"][0]["text"]["text"] == "🔥 100 firing (100 critical) · ✅ 5 resolved"


def test_slack_trigger_and_resolve_in_one_batch_show_once_as_resolved() -> None:
    message = build_message([event(), event("resolve")], max_alerts=20)
    (attachment,) = message["attachments"]
    assert attachment["color"] == "#36a64f"
    assert message["text"].startswith("[RESOLVED:1]")


async def test_webhook_batch(webhook: FakeReceiverServer) -> None:
    hook = await receiver("webhook", webhook, bearer_token="TOKENTOKEN")
    assert (await hook.send([event(), event("resolve", dedup_key="other")])).outcome is (
        Outcome.DELIVERED
    )
    body = webhook.bodies()[0]
    assert webhook.requests[0].headers["authorization"] == "Bearer TOKENTOKEN"
    assert body["status"] == "firing"
    assert [a["status"] for a in body["alerts"]] == ["firing", "resolved"]
    assert body["alerts"][0]["starts_at"] == "2026-01-01T12:00:00.000Z"
    assert body["alerts"][1]["ends_at"] is not None
    webhook.then(Answer(422, "bad"))
    assert (await hook.send([event()])).outcome is Outcome.PERMANENT


async def test_probes_do_not_send_alerts(
    pagerduty: FakeReceiverServer, slack: FakeReceiverServer
) -> None:
    pd = await receiver("pagerduty", pagerduty)
    assert (await pd.probe()).ok  # GET: 405 from the fake, nothing recorded
    assert pagerduty.requests == []
    team = await receiver("slack", slack)
    result = await team.probe()
    assert result.ok, result
    assert slack.bodies() == [{}]  # an empty object: Slack posts nothing for it
    slack.then(Answer(404, "no_service"))
    result = await team.probe()
    assert not result.ok
    assert "no_service" in result.detail


def test_every_receiver_type_is_registered() -> None:
    from typing import get_args

    from alerts.receivers.config import ReceiverConfig
    from alerts.receivers.registry import KINDS

    (union, _) = get_args(ReceiverConfig)
    models = get_args(union)
    assert {KINDS[m.model_fields["type"].annotation.__args__[0]].config for m in models} == set(
        models
    )
    assert set(KINDS) == {"pagerduty", "slack", "webhook", "alertmanager", "log", "heroku_rollback"}

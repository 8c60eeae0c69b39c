"""Issue 11's fixes at their cause, in-process: a poison alert in a Slack batch, a
refused repeat keeps its resolve, a follower that loses the store re-sends nothing,
escaped dedup keys, severity-ordered Slack groups, the ``""`` silence matcher."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alert_fakes import ROUTING_KEY, Answer, FakeReceiverServer, Harness
from conftest import make_config

from alerts.labels import dedup_key
from alerts.notify.events import Event
from alerts.receivers.slack import build_message
from alerts.silences import Silences
from alerts.statedb.records import SENT
from monitor.app.config import Config
from monitor.kernel.snapshot import gauge

CONN = gauge("test_ratio", "a value no built-in rule watches")
JOB = ("postgres", "primary")
HOT = {"name": "Hot", "metric": CONN.name, "op": ">", "threshold": 0.9, "for": "0s"}
Make = Callable[[Config], Harness]


def config(
    pagerduty: FakeReceiverServer | None = None,
    slack: FakeReceiverServer | None = None,
    *,
    route: dict[str, Any] | None = None,
) -> Config:
    receivers: dict[str, Any] = {}
    if pagerduty is not None:
        receivers["oncall"] = {
            "type": "pagerduty",
            "routing_key": ROUTING_KEY,
            "url": pagerduty.url,
        }
    if slack is not None:
        receivers["team"] = {"type": "slack", "webhook_url": slack.url}
    return make_config(
        receivers=receivers,
        rules=[{**HOT, "severity": "critical"}],
        routes=[{"receivers": list(receivers), **(route or {})}],
    )


def hot(h: Harness, *values: float) -> Any:
    return h.view({JOB: [CONN(v, target=f"t{i}") for i, v in enumerate(values)]})


async def test_poison_alert_in_a_slack_batch_is_isolated(
    harness: Make, slack: FakeReceiverServer
) -> None:
    slack.poison = b"t3"
    h = harness(config(slack=slack, route={"group_by": []}))
    await h.open()
    await h.evaluate(hot(h, *[0.95] * 8))
    await h.run_until(lambda: h.engine.pending_count() == 0, limit=120)
    first = slack.requests[0]
    assert first.status == 400 and len(first.json()["attachments"][0]["blocks"]) == 8
    delivered = [r for r in slack.requests if r.status == 200]
    assert len(delivered) == 7
    assert all(len(r.json()["attachments"][0]["blocks"]) == 1 for r in delivered)
    assert h.engine.receivers_up()["team"] is True  # a poison alert is not a broken hook
    assert len(slack.requests) == 9  # the batch, then each alone (t3 refused again)
    # t3's trigger never got through: nothing is open for it, so no resolve either
    await h.evaluate(hot(h, *[0.1] * 8))
    await h.run_until(lambda: h.engine.pending_count() == 0, limit=120)
    resolved = [r for r in slack.requests[9:] if r.status == 200]
    assert sum(len(r.json()["attachments"][0]["blocks"]) for r in resolved) == 7
    assert all("t3" not in r.body.decode() for r in resolved)


async def test_a_poison_resolve_is_retried_never_dropped(
    harness: Make, slack: FakeReceiverServer
) -> None:
    h = harness(config(slack=slack, route={"group_by": []}))
    await h.open()
    await h.evaluate(hot(h, *[0.95] * 8))
    await h.run_until(lambda: h.engine.pending_count() == 0, limit=120)
    assert [r.status for r in slack.requests] == [200]
    slack.poison = b"t3"
    await h.evaluate(hot(h, *[0.1] * 8))
    await h.run_until(lambda: h.engine.pending_count() == 1, limit=120)
    resolved = [r for r in slack.requests[1:] if r.status == 200]
    assert len(resolved) == 7 and all("t3" not in r.body.decode() for r in resolved)
    (left,) = h.engine.outbox.rows.values()
    assert left.action == "resolve" and "t3" in left.payload
    slack.poison = None  # whatever made it poison is fixed: the resolve goes out
    await h.run_until(lambda: h.engine.pending_count() == 0, limit=900)
    assert "t3" in slack.requests[-1].body.decode()


async def test_a_broken_slack_hook_is_still_called_broken(
    harness: Make, slack: FakeReceiverServer
) -> None:
    slack.poison = b"Hot"  # every message refused: the hook, not an alert
    h = harness(config(slack=slack, route={"group_by": []}))
    await h.open()
    await h.evaluate(hot(h, 0.95, 0.95, 0.95))
    await h.run_until(lambda: h.engine.pending_count() == 0, limit=120)
    assert len(slack.requests) == 4  # the batch, then each alert alone
    assert h.engine.receivers_up()["team"] is False


async def test_a_refused_repeat_keeps_the_resolve(
    harness: Make, pagerduty: FakeReceiverServer
) -> None:
    h = harness(config(pagerduty, route={"repeat_interval": "1h"}))
    await h.open()
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    h.clock.advance(3601)
    pagerduty.then(Answer(400, '{"status":"invalid event"}'))
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    (record,) = h.engine.ledger.notifications.values()
    assert record.status == SENT  # the incident the first trigger opened is still open
    await h.evaluate(hot(h, 0.1))
    await h.deliver()
    assert pagerduty.actions() == ["trigger", "trigger", "resolve"]


async def test_a_follower_that_loses_the_store_does_not_page_again(
    harness: Make, pagerduty: FakeReceiverServer
) -> None:
    h: Harness = harness(config(pagerduty))
    await h.open()
    h.engine.step_down()  # another daemon leads (and paged t0)
    await h.evaluate(hot(h, 0.95, 0.1))
    h.engine.lead_in_memory(inherit=True)  # store lost, the leader's lease ran out
    await h.evaluate(hot(h, 0.95, 0.1))
    await h.deliver()
    assert pagerduty.requests == []  # t0 was paged by the leader
    await h.evaluate(hot(h, 0.95, 0.95))  # t1 starts firing now: seen by this process
    await h.deliver()
    assert [b["dedup_key"] for b in pagerduty.bodies()] == ["app-monitor/Hot/target=t1"]
    assert await h.engine.flush(h.clock()) is False  # nothing written without the lease


def test_dedup_key_escapes_separators_and_keeps_plain_keys() -> None:
    assert dedup_key("R", (("a", "x,b=y"),)) != dedup_key("R", (("a", "x"), ("b", "y")))
    assert dedup_key("R", (("a", "x\\"), ("b", "y"))) != dedup_key("R", (("a", "x\\,b=y"),))
    assert dedup_key("PgDown", (("target", "primary"),)) == "app-monitor/PgDown/target=primary"


def _event(i: int, severity: str) -> Event:
    return Event(
        action="trigger",
        rule="R",
        severity=severity,
        labels={"target": f"t{i}"},
        summary=f"alert {i}",
        description="",
        value=1.0,
        threshold=0.0,
        active_at=1.0,
        fired_at=1.0,
        resolved_at=None,
        dedup_key=f"k{i}",
        runbook_url=None,
        dashboard_url=None,
        component="c",
    )


def test_slack_lists_the_most_severe_first_and_counts_per_severity() -> None:
    events = [_event(i, "warning") for i in range(123)]
    events.insert(60, _event(900, "critical"))
    events.append(_event(901, "critical"))
    message = build_message(events, max_alerts=20)
    assert message["blocks"][0]["text"]["text"] == "🔥 125 firing (2 critical, 123 warning)"
    sections: list[dict[str, Any]] = message["attachments"][0]["blocks"]
    assert "t900" in sections[0]["text"]["text"] and "t901" in sections[1]["text"]["text"]


def test_a_silence_on_an_empty_label_matches_only_alerts_without_it() -> None:
    cfg = make_config(
        silences=[{"match": {"team": ""}, "end": "2100-01-01T00:00:00Z", "comment": "x"}]
    )
    silences = Silences(cfg.silences)
    assert silences.silencing({"alertname": "R"}, 1.0) is not None
    assert silences.silencing({"alertname": "R", "team": "db"}, 1.0) is None

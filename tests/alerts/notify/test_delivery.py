"""Dispatch and delivery, stepped with a fake clock against fake PagerDuty/Slack servers."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alert_fakes import ROUTING_KEY, Answer, FakeReceiverServer, Harness
from conftest import make_config

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
    severity: str = "critical",
    route: dict[str, Any] | None = None,
    **doc: Any,
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
    doc.setdefault("rules", [{**HOT, "severity": severity}])
    if route is not None:
        doc["routes"] = [{"receivers": list(receivers), **route}]
    return make_config(receivers=receivers, **doc)


def hot(h: Harness, *values: float) -> Any:
    return h.view({JOB: [CONN(v, target=f"t{i}") for i, v in enumerate(values)]})


async def test_pagerduty_500_then_202_delivers_exactly_once(
    harness: Make, pagerduty: FakeReceiverServer
) -> None:
    h = harness(config(pagerduty))
    await h.open()
    pagerduty.then(Answer(500, "internal error"))
    await h.evaluate(hot(h, 0.95))
    await h.run_until(lambda: h.engine.pending_count() == 0)
    assert pagerduty.actions() == ["trigger", "trigger"]
    assert pagerduty.bodies()[0] == pagerduty.bodies()[1]
    h.clock.advance(3600)
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    assert len(pagerduty.requests) == 2  # delivered once, no repeat before repeat_interval
    assert h.engine.counters.notifications[("oncall", "success")] == 1
    assert h.engine.counters.notifications[("oncall", "retry")] == 1


async def test_a_dropped_connection_is_retried(
    harness: Make, pagerduty: FakeReceiverServer
) -> None:
    h = harness(config(pagerduty))
    await h.open()
    pagerduty.then(Answer(drop=True))
    await h.evaluate(hot(h, 0.95))
    await h.run_until(lambda: h.engine.pending_count() == 0)
    assert pagerduty.actions() == ["trigger", "trigger"]


async def test_slack_429_with_retry_after_delays_without_dropping(
    harness: Make, slack: FakeReceiverServer
) -> None:
    h = harness(config(slack=slack))
    await h.open()
    slack.then(Answer(429, "", {"Retry-After": "30"}))
    await h.evaluate(hot(h, 0.95))
    waited = await h.run_until(lambda: len(slack.requests) == 2, step=1.0)
    assert 30.0 <= waited <= 31.0
    assert h.engine.pending_count() == 0
    assert slack.bodies()[0] == slack.bodies()[1]


async def test_a_hundred_alerts_at_once_keep_one_message_a_second(
    harness: Make, slack: FakeReceiverServer
) -> None:
    """group_by target: 100 messages, paced 1/s, through a 429 with Retry-After: 30."""
    h = harness(config(slack=slack, severity="warning", route={"group_by": ["target"]}))
    await h.open()
    slack.then(Answer(200, "ok"), Answer(429, "", {"Retry-After": "30"}))
    await h.evaluate(hot(h, *([0.95] * 100)))
    sent_at: list[float] = []
    start = h.clock.monotonic
    while len(slack.requests) < 101:
        before = len(slack.requests)
        await h.delivery.step("team")
        sent_at.extend([h.clock.monotonic - start] * (len(slack.requests) - before))
        h.clock.advance(0.1)
        assert h.clock.monotonic - start < 200, f"only {len(slack.requests)} requests"
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert min(gaps) >= 1.0 - 1e-9
    assert gaps[1] >= 30.0  # the 429 paused the webhook
    assert h.engine.pending_count() == 0
    targets = {m["attachments"][0]["blocks"][0]["text"]["text"] for m in slack.bodies()[2:]}
    assert len(targets) == 99  # every alert delivered once after the 429 (and one retried)


async def test_alerts_firing_together_share_one_message(
    harness: Make, slack: FakeReceiverServer
) -> None:
    h = harness(config(slack=slack, severity="warning"))
    await h.open()
    await h.evaluate(hot(h, *([0.95] * 100)))
    await h.deliver()
    (message,) = slack.bodies()
    assert message["text"] == "[FIRING:100] Hot"
    assert message["attachments"][0]["blocks"][-1]["elements"][0]["text"] == (
        "...and 80 more firing"
    )


async def test_slack_410_marks_the_receiver_broken_and_alerts_the_others(
    harness: Make, pagerduty: FakeReceiverServer, slack: FakeReceiverServer
) -> None:
    h = harness(
        config(
            pagerduty,
            slack,
            severity="warning",
            routes=[{"match": {"severity": "warning"}, "receivers": ["team"]}],
        )
    )
    await h.open()
    slack.then(*[Answer(410, "channel_is_archived")] * 5)
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    for _ in range(120):
        h.clock.advance(1)
        await h.deliver()
    assert len(slack.requests) == 1  # no retry loop
    assert h.engine.receivers_up()["team"] is False
    assert h.engine.counters.notifications[("team", "permanent_error")] == 1
    await h.evaluate(hot(h, 0.95))  # the next cycle sees monitor_receiver_up 0
    await h.deliver()
    (broken,) = pagerduty.bodies()
    assert broken["payload"]["class"] == "MonitorReceiverBroken"
    assert broken["payload"]["custom_details"]["labels"]["receiver"] == "team"
    assert len(slack.requests) == 1  # the self-alert is not sent to the broken receiver
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    assert len(slack.requests) == 1


async def test_a_silence_reached_while_retrying_stops_delivery(
    harness: Make, pagerduty: FakeReceiverServer, tmp_path: Path
) -> None:
    state = {"url": f"sqlite:///{tmp_path / 'state.db'}"}
    h = harness(config(pagerduty, state=state))
    await h.open()
    pagerduty.then(*[Answer(503, "")] * 3)
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    assert len(pagerduty.requests) == 1
    # the same daemon restarted with a silence for it while the trigger is in backoff
    from datetime import UTC, datetime

    now = datetime.fromtimestamp(h.clock.wall, UTC)
    silenced = config(
        pagerduty,
        state=state,
        silences=[{"match": {"alertname": "Hot"}, "end": now.replace(year=now.year + 1)}],
    )
    await h.close()
    h2 = harness(silenced)
    await h2.open()
    assert h2.engine.pending_count() == 1
    await h2.run_until(lambda: h2.engine.pending_count() == 0)
    assert len(pagerduty.requests) == 1
    assert h2.engine.counters.notifications[("oncall", "silenced")] == 1


async def test_a_silence_starting_while_retrying_stops_delivery(
    harness: Make, pagerduty: FakeReceiverServer
) -> None:
    from datetime import UTC, datetime

    clock_now = 1_800_000_000.0
    start = datetime.fromtimestamp(clock_now + 5, UTC)
    end = datetime.fromtimestamp(clock_now + 3600, UTC)
    h = harness(
        config(pagerduty, silences=[{"match": {"alertname": "Hot"}, "start": start, "end": end}])
    )
    await h.open()
    assert h.clock.wall == clock_now
    pagerduty.then(*[Answer(503, "")] * 10)
    await h.evaluate(hot(h, 0.95))
    await h.run_until(lambda: h.engine.pending_count() == 0, step=0.5)
    assert 1 <= len(pagerduty.requests) <= 4  # attempts before the silence began, then none
    assert h.clock.wall >= clock_now + 5
    record = h.engine.ledger.notifications[next(iter(h.engine.ledger.notifications))]
    assert record.status == "silenced"
    # when the silence ends and the alert still fires, it is notified then
    pagerduty.answers.clear()
    h.clock.wall = clock_now + 3600
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    assert pagerduty.actions()[-1] == "trigger"
    assert h.engine.pending_count() == 0


async def test_resolves_are_not_silenced(harness: Make, pagerduty: FakeReceiverServer) -> None:
    h = harness(config(pagerduty))
    await h.open()
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    h.silences._silences = harness(  # a silence appears after the page went out
        config(pagerduty, silences=[{"match": {}, "end": "2100-01-01T00:00:00Z"}])
    ).silences._silences
    await h.evaluate(hot(h, 0.5))
    await h.deliver()
    assert pagerduty.actions() == ["trigger", "resolve"]


async def test_repeat_interval(harness: Make, pagerduty: FakeReceiverServer) -> None:
    h = harness(config(pagerduty, route={"repeat_interval": "1h"}))
    await h.open()
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    h.clock.advance(3599)
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    assert pagerduty.actions() == ["trigger"]
    h.clock.advance(2)
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    assert pagerduty.actions() == ["trigger", "trigger"]
    first, second = pagerduty.bodies()
    assert first["dedup_key"] == second["dedup_key"]
    assert second["payload"]["custom_details"]["repeat"] is True
    assert second["payload"]["timestamp"] == first["payload"]["timestamp"]  # detection time


async def test_group_wait_swallows_a_blip(harness: Make, slack: FakeReceiverServer) -> None:
    h = harness(config(slack=slack, route={"group_wait": "30s"}))
    await h.open()
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    h.clock.advance(10)
    await h.evaluate(hot(h, 0.5))
    await h.run_until(lambda: h.engine.pending_count() == 0)
    h.clock.advance(60)
    await h.deliver()
    assert slack.requests == []


async def test_restart_keeps_firing_without_a_new_page_and_resolves_later(
    harness: Make, pagerduty: FakeReceiverServer, tmp_path: Path
) -> None:
    state = {"url": f"sqlite:///{tmp_path / 'state.db'}"}
    h = harness(config(pagerduty, state=state))
    await h.open()
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    await h.close()
    restarted = harness(config(pagerduty, state=state))
    await restarted.open()
    restarted.clock.advance(600)
    await restarted.evaluate(hot(restarted, 0.95))
    await restarted.deliver()
    assert pagerduty.actions() == ["trigger"]
    await restarted.evaluate(hot(restarted, 0.5))
    await restarted.deliver()
    assert pagerduty.actions() == ["trigger", "resolve"]


async def test_cleared_while_down_is_resolved_after_restart(
    harness: Make, pagerduty: FakeReceiverServer, tmp_path: Path
) -> None:
    state = {"url": f"sqlite:///{tmp_path / 'state.db'}"}
    h = harness(config(pagerduty, state=state))
    await h.open()
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    await h.close()
    restarted = harness(config(pagerduty, state=state))
    await restarted.open()
    restarted.clock.advance(3600)
    # before the collector has run again nothing changes ...
    await restarted.evaluate(restarted.view({JOB: []}, failed=frozenset({JOB})))
    assert restarted.engine.state.instances
    # ... once it reports the value back to normal, the resolve goes out
    await restarted.evaluate(hot(restarted, 0.2))
    await restarted.deliver()
    assert pagerduty.actions() == ["trigger", "resolve"]


async def test_resolve_goes_with_the_routing_key_of_the_trigger(
    harness: Make, pagerduty: FakeReceiverServer, tmp_path: Path
) -> None:
    state = {"url": f"sqlite:///{tmp_path / 'state.db'}"}
    h = harness(config(pagerduty, state=state))
    await h.open()
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    await h.close()
    new_key = "N3WK3YN3WK3YN3WK3YN3WK3YN3WK3Y32"
    changed = make_config(
        receivers={"oncall": {"type": "pagerduty", "routing_key": new_key, "url": pagerduty.url}},
        rules=[{**HOT, "severity": "critical"}],
        state=state,
    )
    restarted = harness(changed)
    await restarted.open()
    await restarted.evaluate(hot(restarted, 0.5))
    await restarted.deliver()
    trigger, resolve = pagerduty.bodies()
    assert resolve["event_action"] == "resolve"
    assert resolve["routing_key"] == trigger["routing_key"] == ROUTING_KEY
    assert resolve["dedup_key"] == trigger["dedup_key"]


async def test_partial_resolve_keeps_one_dedup_key_per_instance(
    harness: Make, pagerduty: FakeReceiverServer
) -> None:
    h = harness(config(pagerduty))
    await h.open()
    await h.evaluate(hot(h, 0.95, 0.95))
    await h.deliver()
    await h.evaluate(hot(h, 0.95, 0.1))
    await h.deliver()
    bodies = pagerduty.bodies()
    assert [b["event_action"] for b in bodies] == ["trigger", "trigger", "resolve"]
    assert {b["dedup_key"] for b in bodies[:2]} == {
        "app-monitor/Hot/target=t0",
        "app-monitor/Hot/target=t1",
    }
    assert bodies[2]["dedup_key"] == "app-monitor/Hot/target=t1"


async def test_record_says_what_was_sent(harness: Make, pagerduty: FakeReceiverServer) -> None:
    h = harness(config(pagerduty))
    await h.open()
    await h.evaluate(hot(h, 0.95))
    await h.deliver()
    (record,) = h.engine.ledger.notifications.values()
    assert record.status == SENT
    assert record.receiver == "oncall"
    assert record.routing_key == ROUTING_KEY
    assert record.dedup_key == pagerduty.bodies()[0]["dedup_key"]


STATEMENT_CALLS = gauge("pg_stat_statements_calls_total", "calls", "datname", "queryid")
STATEMENT_SECONDS = gauge("pg_stat_statements_exec_seconds_total", "s", "datname", "queryid")


def statement_view(h: Harness, total: dict[str, float], mean: float) -> Any:
    """Ten more calls of query 42 at ``mean`` seconds each, as the statements job reports."""
    total["calls"] += 10
    total["seconds"] += 10 * mean
    job = ("postgres_statements", "primary")
    return h.view(
        {
            job: [
                STATEMENT_CALLS(total["calls"], "app", "42", target="primary"),
                STATEMENT_SECONDS(total["seconds"], "app", "42", target="primary"),
            ]
        }
    )


def regression_doc(tmp_path: Path, window: str, baseline: str) -> dict[str, Any]:
    return {
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "rules": [
            {
                "name": "PgQueryRegression",
                "window": window,
                "baseline": baseline,
                "min_calls": 20,
                "severity": "critical",
            }
        ],
    }


async def slowdown_pages(
    h: Harness, total: dict[str, float], pagerduty: FakeReceiverServer
) -> dict[str, Any]:
    """Query 42 five times slower for 70 s pages once, for the regression rule."""
    for _ in range(7):
        h.clock.advance(10)
        await h.evaluate(statement_view(h, total, 0.050))
    await h.deliver()
    (trigger,) = pagerduty.bodies()
    assert trigger["payload"]["class"] == "PgQueryRegression"
    return trigger


async def test_regression_baseline_survives_a_restart(
    harness: Make, pagerduty: FakeReceiverServer, tmp_path: Path
) -> None:
    total = {"calls": 0.0, "seconds": 0.0}
    doc = regression_doc(tmp_path, "60s", "300s")
    h = harness(config(pagerduty, **doc))
    await h.open()
    for _ in range(36):
        await h.evaluate(statement_view(h, total, 0.010))
        h.clock.advance(10)
    await h.close()
    restarted = harness(config(pagerduty, **doc))
    await restarted.open()
    trigger = await slowdown_pages(restarted, total, pagerduty)
    assert trigger["payload"]["custom_details"]["labels"]["queryid"] == "42"


async def test_a_thinned_regression_history_is_thinned_in_the_state_database(
    harness: Make, pagerduty: FakeReceiverServer, tmp_path: Path
) -> None:
    """Past the window, the history keeps one point per coarse step (a 24th of the
    baseline) in memory and in the state database alike; a restart adopts exactly that,
    and judges a slowdown against it."""
    total = {"calls": 0.0, "seconds": 0.0}
    doc = regression_doc(tmp_path, "60s", "1h")  # a point every 10 s, then every 150 s
    h = harness(config(pagerduty, **doc))
    await h.open()
    for _ in range(450):  # 75 min: past the horizon (1 h + 70 s)
        await h.evaluate(statement_view(h, total, 0.010))
        h.clock.advance(10)
    (in_memory,) = h.engine.state.history["PgQueryRegression"].values()
    stored = (await h.db.load()).history
    assert [row.at for row in stored] == [point.wall for point in in_memory]
    assert len(stored) <= 9 + 26  # 60 s + slack at 10 s, 1 h at 150 s (~370 unthinned)
    await h.close()
    restarted = harness(config(pagerduty, **doc))
    await restarted.open()
    (adopted,) = restarted.engine.state.history["PgQueryRegression"].values()
    assert [p.wall for p in adopted] == [p.wall for p in in_memory]
    await slowdown_pages(restarted, total, pagerduty)

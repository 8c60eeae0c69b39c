"""``heroku_rollback`` against a local stand-in for the Heroku Platform API: the whole
path from a replayed regression (p95 doubled on /checkout after v124) through the
ReleaseRegression rule and the notification pipeline to one rollback call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alert_fakes import ROUTING_KEY, FakeClock, FakeReceiverServer, Harness
from deploy_replay import APP, T0, Phase, Replay, Traffic
from heroku_api_fake import ACCEPT, API_KEY, FakeHerokuApi
from support import wait_for

from alerts.notify.events import Event
from alerts.receivers.heroku_rollback import HerokuRollbackReceiver
from alerts.receivers.registry import build_receivers, http_client
from monitor.app.config import validate
from monitor.app.deploys_wiring import receivers_with_rollback
from monitor.kernel.snapshot import Sample


async def regressed_replay() -> list[list[Sample]]:
    after = Phase()
    after.routes["/checkout"] = Traffic(median_ms=190.0)
    replay = Replay()
    await replay.start()
    try:
        await replay.run(Phase(), after, after_minutes=30)
    finally:
        await replay.stop()
    return replay.samples


async def through_the_pipeline(
    tmp_path: Path, samples: list[list[Sample]], rollback: dict[str, Any], slack: FakeReceiverServer
) -> Harness:
    config = validate(
        {
            "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
            "receivers": {
                "rollback": {"type": "heroku_rollback", **rollback},
                "team": {"type": "slack", "webhook_url": slack.url},
            },
        },
        environ={},
    )
    clock = FakeClock(start=T0)
    harness = Harness(config, clock)
    await harness.open()
    for minute in samples:
        clock.advance(60)
        await harness.evaluate(harness.view({("deploys", "deploys"): minute}))
        await harness.deliver()
    return harness


@pytest.fixture
async def heroku() -> Any:
    api = FakeHerokuApi(APP, range(100, 125))
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def slack() -> Any:
    server = FakeReceiverServer("slack")
    await server.start()
    yield server
    await server.stop()


async def test_enabled_rollback_calls_the_api_exactly_once(
    tmp_path: Path, heroku: FakeHerokuApi, slack: FakeReceiverServer
) -> None:
    samples = await regressed_replay()
    rollback = {"api_key": API_KEY, "dry_run": False, "api_url": heroku.url}
    harness = await through_the_pipeline(tmp_path, samples, rollback, slack)
    try:
        (post,) = heroku.posts()
        assert post.path == f"/apps/{APP}/releases"
        assert post.headers["accept"] == ACCEPT
        assert post.headers["authorization"] == f"Bearer {API_KEY}"
        v123 = next(r for r in heroku.releases if r["version"] == 123)
        assert post.body == f'{{"release": "{v123["id"]}"}}'.encode()
        assert heroku.releases[-1]["description"] == "Rollback to v123"
        receiver = harness.receivers["rollback"]
        assert isinstance(receiver, HerokuRollbackReceiver)
        assert any(
            d.startswith("rolled-back: rolled shop back from v124 to v123")
            for d in receiver.decisions
        )
        # the decision reached the other receiver, and so did the regression itself
        texts = [r.body.decode() for r in slack.requests]
        assert any("Rollback of shop v124: rolled-back" in t for t in texts)
        assert any("shop v124: p95 /checkout" in t for t in texts)
        assert API_KEY not in "".join(texts)
    finally:
        await harness.close()


async def test_dry_run_calls_nothing(
    tmp_path: Path, heroku: FakeHerokuApi, slack: FakeReceiverServer
) -> None:
    samples = await regressed_replay()
    harness = await through_the_pipeline(tmp_path, samples, {"api_url": heroku.url}, slack)
    try:
        assert heroku.calls == []
        receiver = harness.receivers["rollback"]
        assert isinstance(receiver, HerokuRollbackReceiver)
        assert receiver.decisions == ["dry-run: would roll shop back from v124 to v123"]
        await wait_for(lambda: any("dry-run" in r.body.decode() for r in slack.requests))
    finally:
        await harness.close()


def regression(**labels: str) -> Event:
    base = {
        "alertname": "ReleaseRegression",
        "severity": "critical",
        "app": APP,
        "version": "v124",
        "previous_version": "v123",
        "release_kind": "deploy",
        "released_at": str(int(T0)),
        "signal": "p95",
        "route": "/checkout",
    }
    return Event(
        action="trigger",
        rule="ReleaseRegression",
        severity=labels.pop("severity", "critical"),
        labels=base | labels,
        summary="shop v124: p95 /checkout 180 ms -> 420 ms",
        description="",
        value=1.0,
        threshold=0.0,
        active_at=T0 + 900,
        fired_at=T0 + 900,
        resolved_at=None,
        dedup_key="k",
    )


async def live_receiver(heroku: FakeHerokuApi, **extra: Any) -> HerokuRollbackReceiver:
    config = validate(
        {
            "receivers": {
                "rb": {
                    "type": "heroku_rollback",
                    "api_key": API_KEY,
                    "dry_run": False,
                    "api_url": heroku.url,
                    **extra,
                }
            }
        },
        environ={},
    )
    receivers, _ = build_receivers(config.receivers, http_client())
    receiver = receivers["rb"]
    assert isinstance(receiver, HerokuRollbackReceiver)
    return receiver


async def test_never_loops_never_late_never_twice(heroku: FakeHerokuApi) -> None:
    receiver = await live_receiver(heroku, within="10m")
    # a rollback release that regresses is not rolled back again
    await receiver.send([regression(release_kind="rollback")])
    # too long after the deploy
    await receiver.send([regression(released_at=str(int(T0 - 3600)))])
    # warnings and other rules are not acted on
    await receiver.send([regression(severity="warning", version="v124")])
    assert heroku.calls == []
    # the real thing, then the same alert again (repeat, restart of the pipeline)
    fresh = await live_receiver(heroku, within="30m")
    await fresh.send([regression()])
    await fresh.send([regression()])
    assert len(heroku.posts()) == 1
    # another process (restart) sees the app is no longer on v124 and does nothing
    other = await live_receiver(heroku)
    await other.send([regression()])
    assert len(heroku.posts()) == 1
    assert other.decisions == ["skip: shop is at v125 now, not v124: nothing to undo"]


async def test_refused_key_is_permanent_and_secret_free(heroku: FakeHerokuApi) -> None:
    config = validate(
        {
            "receivers": {
                "rb": {
                    "type": "heroku_rollback",
                    "api_key": "wrong-key-0123456789",
                    "dry_run": False,
                    "api_url": heroku.url,
                }
            }
        },
        environ={},
    )
    receivers, _ = build_receivers(config.receivers, http_client())
    result = await receivers["rb"].send([regression()])
    assert result.outcome.value == "permanent" and result.status == 401
    assert "wrong-key" not in result.detail
    assert heroku.posts() == []


def test_deploys_rollback_section_makes_the_receiver() -> None:
    config = validate(
        {"deploys": {"rollback": {"enabled": True, "api_key": "${HEROKU_API_KEY}"}}},
        environ={"HEROKU_API_KEY": API_KEY},
    )
    receivers = receivers_with_rollback(config)
    made = receivers["heroku_rollback"]
    assert made.type == "heroku_rollback" and made.dry_run is True
    assert validate({"deploys": {}}, environ={}).deploys is not None
    assert "heroku_rollback" not in receivers_with_rollback(validate({"deploys": {}}, environ={}))
    with pytest.raises(Exception, match="api_key"):
        validate({"deploys": {"rollback": {"enabled": True, "dry_run": False}}}, environ={})


async def test_decisions_reach_pagerduty_as_change_events() -> None:
    pagerduty = FakeReceiverServer("webhook")
    await pagerduty.start()
    try:
        config = validate(
            {
                "receivers": {
                    "rb": {"type": "heroku_rollback"},
                    "oncall": {
                        "type": "pagerduty",
                        "routing_key": ROUTING_KEY,
                        "url": f"http://127.0.0.1:{pagerduty.port}/v2/enqueue",
                    },
                }
            },
            environ={},
        )
        receivers, _ = build_receivers(config.receivers, http_client())
        result = await receivers["rb"].send([regression()])
        assert result.detail == "dry-run: would roll shop back from v124 to v123"
        (sent,) = pagerduty.requests
        assert sent.path == "/v2/change/enqueue"
        body = sent.json()
        assert body["routing_key"] == ROUTING_KEY and "event_action" not in body
        assert body["payload"]["summary"].startswith("Rollback of shop v124: dry-run")
        assert body["payload"]["custom_details"]["decision"] == "dry-run"
    finally:
        await pagerduty.stop()


def test_deploys_rollback_joins_configured_routes() -> None:
    from alerts.routing import Router
    from monitor.app.plugins import alerting_section

    config = validate(
        {
            "receivers": {"team": {"type": "log"}},
            "routes": [{"match": {"severity": "critical"}, "receivers": ["team"]}],
            "deploys": {"rollback": {"enabled": True}},
        },
        environ={},
    )
    section = alerting_section(config)
    router = Router(section.routes, list(section.receivers), "team")
    regression = {"alertname": "ReleaseRegression", "severity": "critical"}
    assert {t.receiver for t in router.route(regression)} == {"heroku_rollback", "team"}
    other = {"alertname": "PgDown", "severity": "critical"}
    assert {t.receiver for t in router.route(other)} == {"team"}
    # without routes, nothing is added: every receiver gets every alert
    bare = validate({"deploys": {"rollback": {"enabled": True}}}, environ={})
    assert alerting_section(bare).routes == ()


async def test_no_change_and_little_traffic_never_page(
    tmp_path: Path, heroku: FakeHerokuApi, slack: FakeReceiverServer
) -> None:
    quiet = {r: Traffic(per_minute=2) for r in Phase().routes}
    slow_but_quiet = {r: Traffic(per_minute=2, median_ms=400.0, errors=0.3) for r in quiet}
    cases = [(Phase(), Phase()), (Phase(routes=quiet), Phase(routes=slow_but_quiet))]
    rollback = {"api_key": API_KEY, "dry_run": False, "api_url": heroku.url}
    for i, (before, after) in enumerate(cases):
        replay = Replay(seed=i)
        await replay.start()
        try:
            await replay.run(before, after, after_minutes=40)
        finally:
            await replay.stop()
        case_dir = tmp_path / str(i)
        case_dir.mkdir()
        harness = await through_the_pipeline(case_dir, replay.samples, rollback, slack)
        await harness.close()
    assert slack.requests == [] and heroku.calls == []

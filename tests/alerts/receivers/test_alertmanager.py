"""The ``alertmanager`` receiver and ``format: alertmanager`` webhooks, against real
Alertmanager processes (one, and a two-instance gossip cluster) notifying a local
webhook stand-in that counts what arrives."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from alert_fakes import Answer, FakeClock, FakeReceiverServer, Harness
from alertmanager_support import alertmanager_cluster
from alertmanager_webhook_model import WebhookMessage
from conftest import make_config
from support import wait_for

from alerts.notify.events import Event
from alerts.receivers.alertmanager import combine
from alerts.receivers.alertmanager_format import fingerprint, webhook_body
from alerts.receivers.base import Outcome, Result
from alerts.receivers.registry import build_receivers
from alerts.series import SeriesView
from monitor.app.config import Config
from monitor.kernel.snapshot import gauge

VALUE = gauge("test_ratio", "a value no built-in rule watches")
JOB = ("postgres", "primary")
HOT = {
    "name": "Hot",
    "metric": VALUE.name,
    "op": ">",
    "threshold": 0.9,
    "for": "0s",
    "severity": "critical",
    "summary": "{{ target }} is hot",
    "runbook_url": "https://runbooks.example/hot",
}
RESEND = 1.0


def am_config(tmp_path: Path, urls: list[str], **doc: Any) -> Config:
    receivers = {"am": {"type": "alertmanager", "urls": urls, "resend_interval": f"{RESEND}s"}}
    return make_config(
        rules=[HOT],
        receivers=receivers,
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        **doc,
    )


def view(h: Harness, value: float, target: str = "db1") -> SeriesView:
    return h.view({JOB: [VALUE(value, target=target)]})


async def step(h: Harness, value: float, seconds: float = 0.0) -> None:
    h.clock.advance(seconds)
    await h.evaluate(view(h, value))
    await h.deliver()


def messages(hook: FakeReceiverServer) -> list[WebhookMessage]:
    return [WebhookMessage.model_validate(b) for b in hook.bodies()]


async def keep_firing(h: Harness, seconds: float) -> None:
    """The incident goes on for ``seconds`` of real time, re-sent as the daemon would."""
    until = time.monotonic() + seconds
    await fire_until(h, lambda: time.monotonic() >= until, seconds + 10)


async def fire_until(h: Harness, done: Callable[[], bool], timeout: float) -> None:
    """Keep the alert firing (and re-sent) until ``done``."""

    async def tick() -> bool:
        await step(h, 0.95, RESEND)
        return done()

    await wait_for(tick, timeout=timeout, interval=RESEND / 2)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=time.time())


async def test_a_cluster_pages_once_per_incident_when_an_instance_stops_mid_incident(
    tmp_path: Path, webhook: FakeReceiverServer, clock: FakeClock
) -> None:
    with alertmanager_cluster(tmp_path, webhook.url, size=2) as (first, second):
        h = Harness(am_config(tmp_path, [first.url, second.url]), clock)
        await h.open()
        try:
            await step(h, 0.95)
            assert all(len(i.alerts(filter='alertname="Hot"')) == 1 for i in (first, second))
            await fire_until(h, lambda: len(webhook.requests) >= 1, timeout=30)
            first.stop()
            # longer than the first post's endsAt (4 x resend): only re-sends keep it open
            await keep_firing(h, 4 * RESEND + 3)
            (alert,) = second.alerts(filter='alertname="Hot"')
            assert alert["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
            assert [m.status for m in messages(webhook)] == ["firing"]
            await step(h, 0.1, RESEND)
            await wait_for(lambda: len(webhook.requests) >= 2, timeout=20)
        finally:
            await h.close()
        firing, resolved = messages(webhook)
    assert (firing.status, resolved.status) == ("firing", "resolved")
    (sent,) = firing.alerts
    assert sent.labels == {"alertname": "Hot", "severity": "critical", "target": "db1"}
    assert sent.annotations["summary"] == "db1 is hot"
    assert sent.annotations["runbook_url"] == "https://runbooks.example/hot"
    assert sent.fingerprint == fingerprint(sent.labels)  # ours is Alertmanager's
    assert resolved.alerts[0].endsAt > resolved.alerts[0].startsAt
    assert resolved.alerts[0].endsAt.year > 2000


async def test_without_resends_alertmanager_resolves_the_alert_by_itself(
    tmp_path: Path, webhook: FakeReceiverServer, clock: FakeClock
) -> None:
    """The re-send is what keeps an alert open: sent once, it ends at its ``endsAt``."""
    with alertmanager_cluster(tmp_path, webhook.url) as (am,):
        h = Harness(am_config(tmp_path, [am.url]), clock)
        await h.open()
        try:
            await step(h, 0.95)
            await wait_for(lambda: len(webhook.requests) >= 1, timeout=20)
            await wait_for(lambda: len(webhook.requests) >= 2, timeout=4 * RESEND + 15)
        finally:
            await h.close()
    assert [m.status for m in messages(webhook)] == ["firing", "resolved"]


async def test_daemon_silences_apply_before_alertmanager(
    tmp_path: Path, webhook: FakeReceiverServer, clock: FakeClock
) -> None:
    silence = {
        "match": {"alertname": "Hot"},
        "start": "2020-01-01T00:00:00Z",
        "end": "2099-01-01T00:00:00Z",
    }
    with alertmanager_cluster(tmp_path, webhook.url) as (am,):
        h = Harness(am_config(tmp_path, [am.url], silences=[silence]), clock)
        await h.open()
        try:
            await step(h, 0.95)
            await step(h, 0.95, 10 * RESEND)
            assert am.alerts() == []
        finally:
            await h.close()


async def test_resends_follow_the_resend_interval_not_the_route(
    tmp_path: Path, webhook: FakeReceiverServer, clock: FakeClock
) -> None:
    """A stand-in takes the place of Alertmanager: the fake clock alone drives it."""
    config = am_config(tmp_path, [webhook.url], routes=[{"receivers": ["am"]}])  # 4h repeat
    h = Harness(config, clock)
    await h.open()
    try:
        await step(h, 0.95)
        await step(h, 0.95, RESEND / 2)
        assert len(webhook.requests) == 1
        await step(h, 0.95, RESEND / 2)
        await step(h, 0.95, RESEND)
        assert len(webhook.requests) == 3
        await step(h, 0.1, RESEND / 4)
    finally:
        await h.close()
    bodies = webhook.bodies()
    assert {r.path for r in webhook.requests} == {"/hook/SECRETSECRETSECRET/api/v2/alerts"}
    first, _, _, resolve = (b[0] for b in bodies)
    starts = datetime.fromisoformat(first["startsAt"]).timestamp()
    ends = datetime.fromisoformat(first["endsAt"]).timestamp()
    assert ends - time.time() == pytest.approx(4 * RESEND, abs=2)
    assert starts == pytest.approx(clock.wall - 2.25 * RESEND, abs=0.01)
    assert datetime.fromisoformat(resolve["endsAt"]).timestamp() == pytest.approx(clock.wall)


async def test_a_refused_body_is_permanent_and_one_instance_up_is_enough(
    webhook: FakeReceiverServer,
) -> None:
    client = httpx.AsyncClient()
    doc = {"type": "alertmanager", "urls": [webhook.url, "http://127.0.0.1:9"]}
    receivers, _ = build_receivers(make_config(receivers={"am": doc}).receivers, client)
    am = receivers["am"]
    ok = await am.send([_event()])
    assert ok.outcome is Outcome.DELIVERED and ok.detail.startswith("1/2 instances accepted")
    webhook.then(Answer(400, "cannot unmarshal"), Answer(503))
    bad = await am.send([_event()])
    assert bad.outcome is Outcome.RETRY  # one refused, one unreachable: retry
    await client.aclose()
    assert combine([Result(Outcome.PERMANENT, "HTTP 400", 400)] * 2, 2).outcome is (
        Outcome.PERMANENT
    )


async def test_a_real_alertmanager_accepts_every_shape_of_alert(
    tmp_path: Path, webhook: FakeReceiverServer
) -> None:
    """Labels Alertmanager would refuse (bad names, empty values) are left out; NaN
    values, unicode and long text go through."""
    with alertmanager_cluster(tmp_path, webhook.url) as (am,):
        client = httpx.AsyncClient()
        doc = {"type": "alertmanager", "urls": [am.url]}
        receivers, _ = build_receivers(make_config(receivers={"am": doc}).receivers, client)
        odd = _event(
            labels={"alertname": "Odd", "bad-name": "x", "empty": "", "ünï": "1", "t": "é" * 300},
            value=float("nan"),
            summary="∑" * 5000,
        )
        result = await receivers["am"].send([odd, _event()])
        await client.aclose()
        assert result.outcome is Outcome.DELIVERED, result.detail
        stored = {a["labels"]["alertname"]: a for a in am.alerts()}  # type: ignore[index]
    assert stored["Odd"]["labels"] == {"alertname": "Odd", "t": "é" * 300}
    assert stored["Odd"]["fingerprint"] == fingerprint({"alertname": "Odd", "t": "é" * 300})


# ---- format: alertmanager -------------------------------------------------------------


def _event(action: str = "trigger", **overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "action": action,
        "rule": "PgDown",
        "severity": "critical",
        "labels": {"alertname": "PgDown", "severity": "critical", "target": "primary"},
        "summary": "PostgreSQL primary is not answering",
        "description": "Check the server.",
        "value": 0.0,
        "threshold": 0.0,
        "active_at": 1_767_268_800.0,
        "fired_at": 1_767_268_860.0,
        "resolved_at": 1_767_269_400.0 if action == "resolve" else None,
        "dedup_key": "app-monitor/PgDown/target=primary",
    }
    fields.update(overrides)
    return Event(**fields)


def test_the_webhook_v4_body_fits_the_documented_schema() -> None:
    events = [
        _event(),
        _event(labels={"alertname": "PgDown", "severity": "critical", "target": "replica"}),
        _event("resolve", labels={"alertname": "PgDown", "severity": "critical", "target": "x"}),
    ]
    body = webhook_body("hooks", events, max_alerts=2, external_url="https://mon.example")
    message = WebhookMessage.model_validate(body)
    assert message.truncatedAlerts == 1 and len(message.alerts) == 2
    assert message.commonLabels == {"alertname": "PgDown", "severity": "critical"}
    assert message.groupLabels == {"alertname": "PgDown"}
    assert message.groupKey == '{}/{receiver="hooks"}:{alertname="PgDown"}'
    assert message.status == "firing" and message.externalURL == "https://mon.example"
    assert message.commonAnnotations["summary"] == "PostgreSQL primary is not answering"
    assert body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    resolved = WebhookMessage.model_validate(webhook_body("h", [events[2]], max_alerts=5))
    assert resolved.status == "resolved"
    assert resolved.alerts[0].endsAt.timestamp() == 1_767_269_400.0


async def test_a_webhook_with_format_alertmanager_posts_v4(webhook: FakeReceiverServer) -> None:
    client = httpx.AsyncClient()
    doc = {"type": "webhook", "url": webhook.url, "format": "alertmanager"}
    receivers, _ = build_receivers(make_config(receivers={"hooks": doc}).receivers, client)
    assert (await receivers["hooks"].send([_event()])).outcome is Outcome.DELIVERED
    await client.aclose()
    (message,) = messages(webhook)
    assert message.receiver == "hooks" and message.alerts[0].labels["target"] == "primary"


def test_the_schema_model_rejects_the_monitor_format() -> None:
    """The model is strict enough to tell the two formats apart (and every message a
    real Alertmanager sent in the tests above fitted it)."""
    from alerts.receivers.webhook import build_body

    with pytest.raises(ValueError):
        WebhookMessage.model_validate(build_body("hooks", [_event()], 10))


async def test_credentials_in_an_instance_url_stay_out_of_check_output() -> None:
    client = httpx.AsyncClient()
    doc = {"type": "alertmanager", "urls": ["http://ops:hunter2hunter2@127.0.0.1:9"]}
    receivers, _ = build_receivers(make_config(receivers={"am": doc}).receivers, client)
    result = await receivers["am"].probe()
    sent = await receivers["am"].send([_event()])
    await client.aclose()
    assert not result.ok and "0/1 Alertmanager instances ready" in result.detail
    assert "hunter2" not in result.detail + sent.detail and "127.0.0.1:9" in result.detail

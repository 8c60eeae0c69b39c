"""The alerting component inside a real daemon: HTTP probe -> rule -> PagerDuty."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from alert_fakes import ROUTING_KEY, FakeReceiverServer
from conftest import RunningDaemon, make_config, run_daemon
from support import metric, parse_exposition, wait_for

from alerts.service.component import AlertingComponent
from monitor.app.config import Config
from monitor.app.daemon import Daemon

TOKEN = "metrics-token-123456"


def probe_config(site: FakeReceiverServer, pagerduty: FakeReceiverServer, **doc: Any) -> Config:
    doc.setdefault("http", {"listen": "127.0.0.1:0", "auth_token": TOKEN})
    doc.setdefault("rules", [{"name": "ProbeFailed", "for": "2s"}])
    return make_config(
        interval="1s",
        targets={"http": [{"name": "site", "url": site.url, "interval": "1s", "timeout": "1s"}]},
        receivers={
            "oncall": {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": pagerduty.url}
        },
        routes=[{"match": {"severity": "critical"}, "receivers": ["oncall"]}],
        **doc,
    )


def alerting(daemon: RunningDaemon | Daemon) -> AlertingComponent:
    d = daemon.daemon if isinstance(daemon, RunningDaemon) else daemon
    (component,) = [c for c in d.components if isinstance(c, AlertingComponent)]
    return component


async def alerts(daemon: RunningDaemon) -> list[dict[str, Any]]:
    response = await daemon.get("/alerts", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    result: list[dict[str, Any]] = response.json()["alerts"]
    return result


async def test_probe_failure_pages_and_resolves(
    site: FakeReceiverServer, pagerduty: FakeReceiverServer
) -> None:
    async with run_daemon(probe_config(site, pagerduty)) as daemon:
        assert (await daemon.get("/alerts")).status_code == 401
        site.site_status = 500
        await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=15)
        (firing,) = [a for a in await alerts(daemon) if a["rule"] == "ProbeFailed"]
        assert firing["state"] == "firing"
        assert firing["labels"]["target"] == "site"
        assert firing["summary"] == "site is failing its HTTP probe"
        body = pagerduty.bodies()[0]
        assert body["payload"]["summary"] == "site is failing its HTTP probe"
        assert body["payload"]["component"] == "http_probe"
        text = (await daemon.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text
        parsed = parse_exposition(text)
        assert metric(parsed, "monitor_alerts", state="firing", severity="critical") == 1
        assert (
            metric(parsed, "monitor_notifications_total", receiver="oncall", status="success") == 1
        )
        assert metric(parsed, "monitor_outbox_pending") == 0
        assert metric(parsed, "monitor_notification_latency_seconds_count", receiver="oncall") == 1
        assert metric(parsed, "monitor_alerting_leader") == 1
        assert ROUTING_KEY not in text
        site.site_status = 200
        await wait_for(lambda: pagerduty.actions() == ["trigger", "resolve"], timeout=15)
        await wait_for(lambda: not alerting(daemon).engine.state.instances, timeout=5)
        assert pagerduty.bodies()[1]["dedup_key"] == body["dedup_key"]


async def test_intermittent_failures_page_through_the_error_budget_burn(
    site: FakeReceiverServer, pagerduty: FakeReceiverServer
) -> None:
    """Every other probe fails: ProbeFailed never holds for its 2 s, but half the
    requests failing burns a 99% budget 50x too fast, and the built-in (opt-in)
    ProbeErrorBudgetBurnFast pages once; it resolves when the short window is clean."""
    slo = {"objective": 0.99, "min_samples": 2}
    probe = {"name": "site", "url": site.url, "interval": "1s", "timeout": "1s", "slo": slo}
    config = make_config(
        interval="1s",
        http={"listen": "127.0.0.1:0", "auth_token": TOKEN},
        targets={"http": [probe]},
        receivers={
            "oncall": {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": pagerduty.url}
        },
        routes=[{"match": {"severity": "critical"}, "receivers": ["oncall"]}],
        rules=[
            {"name": "ProbeFailed", "for": "2s"},
            {"name": "ProbeErrorBudgetBurnFast", "enabled": True},
            {"name": "ProbeErrorBudgetBurnSlow", "enabled": True},
        ],
    )
    site.site_cycle = itertools.cycle([200, 500])
    async with run_daemon(config) as daemon:
        await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=20)
        body = pagerduty.bodies()[0]
        assert body["payload"]["class"] == "ProbeErrorBudgetBurnFast"
        assert body["payload"]["severity"] == "critical"
        assert body["payload"]["summary"] == (
            "site is failing fast enough to spend its error budget in days"
        )
        firing = {a["rule"] for a in await alerts(daemon) if a["state"] == "firing"}
        # the slow pair burns too: a warning, which routes to no pager here
        assert firing == {"ProbeErrorBudgetBurnFast", "ProbeErrorBudgetBurnSlow"}
        # healthy again: it resolves once both page pairs are clean, the 30m window last
        # (under 6%: with F failures so far, about F / 0.06 more good probes, ~1 per s)
        site.site_cycle = None
        await wait_for(lambda: pagerduty.actions() == ["trigger", "resolve"], timeout=120)
    # two requests in all: ProbeFailed never held for its 2 s, so it never paged
    assert pagerduty.bodies()[1]["dedup_key"] == body["dedup_key"]


async def test_a_blip_shorter_than_for_sends_nothing(
    site: FakeReceiverServer, pagerduty: FakeReceiverServer
) -> None:
    config = probe_config(site, pagerduty, rules=[{"name": "ProbeFailed", "for": "30s"}])
    async with run_daemon(config) as daemon:
        component = alerting(daemon)
        site.site_status = 500
        await wait_for(lambda: [a["state"] for a in component.alerts_json()] == ["pending"])
        site.site_status = 200
        await wait_for(lambda: component.alerts_json() == [], timeout=10)
        assert pagerduty.requests == []


async def test_two_daemons_on_one_postgres_state_page_once(
    site: FakeReceiverServer, pagerduty: FakeReceiverServer, pg_state_url: str
) -> None:
    config = probe_config(site, pagerduty, state={"url": pg_state_url, "lock_retry": "1s"})
    async with run_daemon(config) as old:
        await wait_for(lambda: alerting(old).role == "leader")
        async with run_daemon(config) as new:  # Heroku: the new dyno starts first
            follower = alerting(new)
            await wait_for(lambda: follower.role == "follower")
            site.site_status = 500
            await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=15)
            await wait_for(
                lambda: [a["state"] for a in follower.alerts_json()] == ["firing"], timeout=10
            )
            seen = follower.engine.counters.evaluations
            await wait_for(lambda: follower.engine.counters.evaluations >= seen + 3, timeout=10)
            assert pagerduty.actions() == ["trigger"]
            assert follower.engine.pending_count() == 0
            await old.stop()  # SIGTERM to the old dyno: it releases the lock
            await wait_for(lambda: follower.role == "leader", timeout=10)
            seen = follower.engine.counters.evaluations
            await wait_for(lambda: follower.engine.counters.evaluations >= seen + 3, timeout=10)
            assert pagerduty.actions() == ["trigger"]  # still firing, no second page
            site.site_status = 200
            await wait_for(lambda: pagerduty.actions() == ["trigger", "resolve"], timeout=15)
    bodies = pagerduty.bodies()
    assert bodies[0]["dedup_key"] == bodies[1]["dedup_key"]


async def test_concurrent_startup_on_postgres_elects_one_leader(
    site: FakeReceiverServer, pagerduty: FakeReceiverServer, pg_state_url: str
) -> None:
    config = probe_config(site, pagerduty, state={"url": pg_state_url, "lock_retry": "1s"})
    daemons = [Daemon(config) for _ in range(3)]
    tasks = [asyncio.create_task(d.run()) for d in daemons]
    try:
        await wait_for(lambda: all(alerting(d).role in ("leader", "follower") for d in daemons))
        assert sorted(alerting(d).role for d in daemons) == ["follower", "follower", "leader"]
    finally:
        for d in daemons:
            d.request_stop()
        await asyncio.gather(*tasks)


async def test_an_unreachable_state_store_still_pages(
    site: FakeReceiverServer, pagerduty: FakeReceiverServer
) -> None:
    """Fail-open: with the state database down (often the very database that is down),
    the daemon delivers from memory."""
    from support import free_port

    url = f"postgresql://monitor:pw@127.0.0.1:{free_port()}/state"
    async with run_daemon(probe_config(site, pagerduty, state={"url": url})) as daemon:
        component = alerting(daemon)
        assert component.role == "degraded"
        site.site_status = 500
        await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=15)
        site.site_status = 200
        await wait_for(lambda: pagerduty.actions() == ["trigger", "resolve"], timeout=15)
        # it never held the lease: what it did stays in memory until it does
        assert component.engine.persistence.writable is False


async def test_rules_are_evaluated_off_the_event_loop(monkeypatch: Any) -> None:
    """A slow evaluation (ten thousand statement series) leaves the loop free; a state
    taken over meanwhile is not overwritten by the stale result."""
    import threading
    import time

    import alerts.service.component as component_module
    from alerts.evaluator import EvalState, evaluate

    threads: list[bool] = []
    release = threading.Event()

    def slow(*args: Any) -> Any:
        threads.append(threading.current_thread() is threading.main_thread())
        release.wait(10)
        return evaluate(*args)

    async with run_daemon(make_config(interval="1s")) as daemon:
        component = alerting(daemon)
        monkeypatch.setattr(component_module, "evaluate", slow)
        engine = component.engine
        again: list[EvalState] = []
        on_loop = engine.evaluate

        def evaluate_on_loop(view: Any, now: Any) -> Any:
            again.append(engine.state)
            return on_loop(view, now)

        monkeypatch.setattr(engine, "evaluate", evaluate_on_loop)
        task = asyncio.create_task(component.evaluate_once())
        while not threads:
            await asyncio.sleep(0.01)
        assert threads == [False]  # in a worker thread
        started = time.monotonic()
        await asyncio.sleep(0.05)  # the loop runs while the rules are being evaluated
        assert time.monotonic() - started < 1 and not task.done()
        taken_over = EvalState({}, {})
        engine.state = taken_over
        release.set()
        await task
        # the stale result was dropped and the rules evaluated again on the new state
        assert again == [taken_over]

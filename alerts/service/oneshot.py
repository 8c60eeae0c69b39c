"""The single-pass commands: ``monitor once`` (alerts part), ``monitor check`` (rules,
state database, receivers) and ``monitor test-alert``."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from dataclasses import replace
from typing import Protocol, TextIO

import httpx

from alerts import templates
from alerts.evaluator import EvalState, evaluate
from alerts.instance import AlertInstance, Clock, State
from alerts.labels import freeze
from alerts.notify.coordinator import AlertEngine
from alerts.notify.delivery import Delivery, system_clock
from alerts.notify.events import Event
from alerts.receivers.base import Outcome, Receiver, Result
from alerts.receivers.registry import build_receivers, http_client
from alerts.rules.ruleset import RuleSet
from alerts.series import ViewBuilder
from alerts.service.config import AlertingConfig as Config
from alerts.statedb import StateDb, StateDbError
from monitor.kernel.redact import redact
from monitor.kernel.snapshot_store import SnapshotStore
from monitor.kernel.source import CheckResult

ONCE_DELIVERY_TIME = 30.0
TEST_ATTEMPTS = 3
TEST_MAX_WAIT = 15.0


# ---------------------------------------------------------------------- monitor check


def check_rules(ruleset: RuleSet) -> CheckResult:
    """Render every template with an example alert and with one missing everything."""
    problems = []
    example = AlertInstance(
        key="example",
        rule="example",
        labels=freeze({"target": "example"}),
        state=State.FIRING,
        severity="warning",
        value=1.0,
        threshold=0.5,
        active_since=0.0,
        active_at=0.0,
        last_true=0.0,
    )
    for rule in ruleset.rules:
        for value in (1.0, None):
            instance = replace(example, rule=rule.name, value=value)
            ctx = rule.context(instance, dict(instance.labels))
            for what, source in (("summary", rule.summary), ("description", rule.description)):
                error = templates.check(source, ctx) if source else None
                if error:
                    problems.append(f"rule {rule.name}: {what} template fails: {error}")
    disabled = f"; disabled: {', '.join(ruleset.disabled)}" if ruleset.disabled else ""
    detail = (
        f"{len(ruleset.rules)} rules in force "
        f"({ruleset.builtin_count} built-in in the pack{disabled})"
    )
    return CheckResult("alerts/rules", True, detail, tuple(sorted(set(problems))))


async def check_state_db(db: StateDb) -> CheckResult:
    item = "alerts/state"
    try:
        await db.open()
        data = await db.load()
        problem = await db.pooling_problem()
    except StateDbError as exc:
        return CheckResult(item, False, redact(str(exc)))
    finally:
        await db.close()
    if problem is not None:
        return CheckResult(item, False, f"{db.description}: {problem}")
    firing = sum(1 for i in data.instances if i.state == State.FIRING.value)
    return CheckResult(
        item,
        True,
        f"{db.description}: {firing} firing, {len(data.outbox)} notifications queued",
    )


# ---------------------------------------------------------------------- monitor once


def _line(instance: AlertInstance, summary: str, note: str = "") -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in instance.labels)
    state = instance.state.value.upper()
    return f"{state:<8} {instance.severity:<8} {instance.rule}{{{labels}}} {summary}{note}"


class Election(Protocol):
    async def elect(self, now: Clock) -> None: ...

    async def release(self) -> None: ...


class OnceTarget(Protocol):
    """What ``monitor once`` needs of the alerting component."""

    engine: AlertEngine
    delivery: Delivery
    ruleset: RuleSet
    views: ViewBuilder
    snapshots: SnapshotStore
    db: StateDb
    client: httpx.AsyncClient

    @property
    def leadership(self) -> Election: ...

    async def evaluate_once(self, now: Clock | None = None) -> None: ...


async def report_once(component: OnceTarget, *, notify: bool, fmt: str) -> None:
    """Print the alerts the collected snapshots imply; with ``notify``, send them.

    Without ``--notify`` nothing is read from or written to the state database, and a rule
    with a ``for`` duration shows as PENDING. With it, the stored state is used (so
    ``for`` durations run across invocations, e.g. from a scheduler) and due
    notifications are delivered before returning.
    """
    out: TextIO = sys.stderr if fmt == "json" else sys.stdout
    prefix = "" if fmt == "json" else "# "
    now = system_clock()
    try:
        if notify:
            await component.leadership.elect(now)
            if not component.engine.leader:
                print(
                    f"{prefix}alerts: another daemon is the alerting leader; not notifying",
                    file=out,
                )
                return
            await component.evaluate_once(now)
            await component.delivery.drain(time.monotonic() + ONCE_DELIVERY_TIME)
            instances = list(component.engine.state.instances.values())
        else:
            view = component.views.build(component.snapshots, {})
            result = evaluate(component.ruleset.rules, view, EvalState(), now)
            instances = list(result.state.instances.values())
        firing = [i for i in instances if i.state is State.FIRING]
        pending = [i for i in instances if i.state is State.PENDING]
        print(f"{prefix}alerts: {len(firing)} firing, {len(pending)} pending", file=out)
        for instance in sorted(instances, key=lambda i: (i.state.value, i.rule, i.labels)):
            summary, _ = component.engine.render(instance)
            rule = component.engine.rules_by_name.get(instance.rule)
            note = ""
            if instance.state is State.PENDING and rule is not None:
                note = f" (fires after {rule.for_:g}s)"
            print(prefix + _line(instance, summary, note), file=out)
        if notify:
            sent = sum(
                n
                for (_, status), n in component.engine.counters.notifications.items()
                if status == "success"
            )
            queued = component.engine.pending_count()
            print(
                f"{prefix}alerts: {sent} notification(s) delivered, {queued} still queued", file=out
            )
    finally:
        if notify:
            await component.engine.flush(system_clock())
            await component.leadership.release()
            await component.db.close()
        await component.client.aclose()


# ---------------------------------------------------------------------- monitor test-alert


def test_event(action: str, dedup: str, severity: str, now: float) -> Event:
    labels = {
        "alertname": "MonitorTestAlert",
        "severity": severity,
        "target": "monitor",
        "test": "true",
    }
    return Event(
        action="trigger" if action == "trigger" else "resolve",
        rule="MonitorTestAlert",
        severity=severity,
        labels=labels,
        summary="Test alert from app-monitor (monitor test-alert): please ignore",
        description="Sent by `monitor test-alert` to check that this receiver works; "
        "its resolve follows.",
        value=None,
        threshold=None,
        active_at=now,
        fired_at=now,
        resolved_at=now if action == "resolve" else None,
        dedup_key=dedup,
        test=True,
    )


async def _send_with_retries(receiver: Receiver, event: Event) -> Result:
    result = Result(Outcome.RETRY, "not sent")
    for attempt in range(TEST_ATTEMPTS):
        result = await receiver.send([event])
        if result.outcome is not Outcome.RETRY:
            return result
        if attempt + 1 < TEST_ATTEMPTS:
            await asyncio.sleep(min(TEST_MAX_WAIT, result.retry_after or 2.0 * (attempt + 1)))
    return result


async def test_alert(config: Config, only: str | None, severity: str = "info") -> int:
    """Send a labelled test trigger and its resolve through each receiver (or ``only``)."""
    client = http_client()
    try:
        receivers, fallback = build_receivers(config.receivers, client)
        if config.receivers and fallback not in config.receivers:
            del receivers[fallback]  # the implicit log receiver only when none is configured
        if only is not None:
            if only not in receivers:
                known = ", ".join(sorted(receivers)) or "none"
                print(f"FAIL  unknown receiver {only!r} (configured: {known})")
                return 1
            receivers = {only: receivers[only]}
        ok = True
        for name, receiver in receivers.items():
            dedup = f"app-monitor/MonitorTestAlert/{uuid.uuid4().hex}"
            now = time.time()
            trigger = await _send_with_retries(
                receiver, test_event("trigger", dedup, severity, now)
            )
            if trigger.outcome is not Outcome.DELIVERED:
                ok = False
                print(f"{'FAIL':<5} receiver/{name:<24} trigger: {redact(trigger.detail)}")
                continue
            resolve = await _send_with_retries(
                receiver, test_event("resolve", dedup, severity, time.time())
            )
            status = "ok" if resolve.outcome is Outcome.DELIVERED else "FAIL"
            ok = ok and status == "ok"
            print(
                f"{status:<5} receiver/{name:<24} trigger: {redact(trigger.detail)}, "
                f"resolve: {redact(resolve.detail)}"
            )
        return 0 if ok else 1
    finally:
        await client.aclose()

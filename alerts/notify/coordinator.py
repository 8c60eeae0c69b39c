"""The alert engine: evaluation results turned into notifications, kept durable.

A thin coordinator over the notify pipeline, in the order an alert flows through it:

1. :func:`alerts.evaluator.evaluate` - pending, firing, resolved;
2. :mod:`alerts.routing` and :mod:`alerts.silences` - which receivers, muted or not;
3. :mod:`alerts.notify.decision` - whether and why to notify each receiver (pure);
4. :mod:`alerts.notify.render` - the event a receiver gets;
5. :mod:`alerts.notify.outbox` - queued until :mod:`alerts.notify.delivery` sends it;
6. :mod:`alerts.notify.ledger` - what each receiver was told, receiver health;
7. :mod:`alerts.notify.persistence` - all of it written through to the state database.

Memory is authoritative. Only the leader dispatches and delivers; every daemon
evaluates, so a follower that takes over already knows what is pending. A trigger whose
delivery attempt finds the alert silenced is dropped and re-queued once the silence
ends; resolves are never silenced (a resolve pages nobody, and a missing one leaves an
incident open).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from alerts.evaluator import EvalResult, EvalState, evaluate
from alerts.instance import AlertInstance, Clock, State, Transition
from alerts.labels import dedup_key
from alerts.notify.counters import Counters
from alerts.notify.decision import Reason, decide_firing, decide_resolved
from alerts.notify.events import Event
from alerts.notify.journal import Journal
from alerts.notify.ledger import Ledger
from alerts.notify.outbox import Outbox
from alerts.notify.persistence import Persistence
from alerts.notify.render import Renderer
from alerts.receivers.base import Receiver
from alerts.routing import Router, RouteTarget
from alerts.rules.kinds import Rule
from alerts.rules.ruleset import RuleSet
from alerts.series import SeriesView
from alerts.silences import Silences
from alerts.statedb.base import StateDb
from alerts.statedb.records import QUEUED, SILENCED, Notification, StateData

log = structlog.get_logger("alerts")


class AlertEngine:
    def __init__(
        self,
        ruleset: RuleSet,
        router: Router,
        silences: Silences,
        receivers: Mapping[str, Receiver],
        db: StateDb,
        *,
        on_enqueue: Callable[[str], None] | None = None,
        on_change: Callable[[], None] | None = None,
        on_receivers_change: Callable[[], None] | None = None,
    ) -> None:
        self.rules = ruleset.rules
        self.router = router
        self.silences = silences
        self.receivers = dict(receivers)
        self.state = EvalState()
        self.counters = Counters()
        self.renderer = Renderer(self.rules)
        journal = Journal()
        self.ledger = Ledger(self.receivers, journal, on_receivers_change=on_receivers_change)
        self.outbox = Outbox(
            self.ledger,
            journal,
            self.counters,
            save=self.flush,
            on_enqueue=on_enqueue,
            on_change=on_change,
        )
        self.persistence = Persistence(
            db, journal, self.ledger, self.outbox, self.counters, on_fenced=self.step_down
        )
        self.inherited: set[str] = set()
        """Alerts already firing when this process began delivering without the stored
        record (a follower that lost the state database): another daemon may have paged
        them, so they are never triggered from this empty memory."""
        self._on_enqueue = on_enqueue or (lambda _: None)
        self._on_change = on_change or (lambda: None)

    @property
    def leader(self) -> bool:
        """True while this daemon dispatches and delivers."""
        return self.outbox.active

    @property
    def rules_by_name(self) -> dict[str, Rule]:
        return self.renderer.rules_by_name

    def receivers_up(self) -> dict[str, bool]:
        return self.ledger.receivers_up()

    def alert_labels(self, instance: AlertInstance) -> dict[str, str]:
        return self.renderer.labels(instance)

    def render(self, instance: AlertInstance) -> tuple[str, str]:
        return self.renderer.render(instance)

    def pending_count(self) -> int:
        return len(self.outbox)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, view: SeriesView, now: Clock) -> EvalResult:
        return self.apply(evaluate(self.rules, view, self.state, now), now)

    def apply(self, result: EvalResult, now: Clock) -> EvalResult:
        """Takes one evaluation's result: the new state, its notifications."""
        self.state = result.state
        for transition in result.transitions:
            _log(transition)
        if self.leader:
            self.persistence.record(result, self.rules, now)
            for transition in result.transitions:
                if transition.resolved:
                    self._resolve(transition.instance, now)
            for instance in self.state.instances.values():
                if instance.state is State.FIRING and instance.key not in self.inherited:
                    self._notify(instance, now)
        if result.transitions:
            # what /metrics shows of alerts changed; the evaluation's own duration and
            # count are refreshed with the next render (a store change), so a cached
            # body stays valid until then and scrapes are served from memory
            self._on_change()
        return result

    # ------------------------------------------------------------------ dispatch

    def _notify(self, instance: AlertInstance, now: Clock) -> None:
        labels = self.alert_labels(instance)
        silenced = self.silences.silencing(labels, now.wall) is not None
        for target in self.router.route(labels):
            receiver = self.receivers.get(target.receiver)
            if receiver is None:
                continue
            told = self.ledger.get(instance.key, target.receiver)
            repeat_interval = target.repeat_interval
            if receiver.resend_interval is not None:
                repeat_interval = min(repeat_interval or math.inf, receiver.resend_interval)
            reason = decide_firing(
                told, silenced=silenced, repeat_interval=repeat_interval, now=now.wall
            )
            if reason is Reason.SILENCED:
                self.ledger.put(
                    Notification(
                        instance.key,
                        target.receiver,
                        dedup_key(instance.rule, instance.labels),
                        receiver.routing_key(),
                        SILENCED,
                    )
                )
            elif reason.notifies:
                self._trigger(instance, labels, target, receiver, told, reason.repeat, now)

    def _trigger(
        self,
        instance: AlertInstance,
        labels: dict[str, str],
        target: RouteTarget,
        receiver: Receiver,
        told: Notification | None,
        repeat: bool,
        now: Clock,
    ) -> None:
        routing_key = told.routing_key if told is not None else receiver.routing_key()
        event = self.renderer.event(instance, "trigger", labels, routing_key, repeat=repeat)
        group = "|".join(f"{k}={labels.get(k, '')}" for k in target.group_by)
        self.outbox.enqueue(
            target.receiver,
            instance.key,
            event,
            group=group,
            suffix=f"repeat@{now.wall:.3f}" if repeat else f"{instance.fired_at or 0:.3f}",
            delay=0.0 if repeat else target.group_wait,
            now=now,
        )
        self.ledger.put(
            Notification(
                instance.key,
                target.receiver,
                event.dedup_key,
                routing_key,
                QUEUED,
                told.first_sent_at if told else None,
                told.last_sent_at if told else None,
            )
        )

    def _resolve(self, instance: AlertInstance, now: Clock) -> None:
        if instance.key in self.inherited:
            self.inherited.discard(instance.key)
            self.persistence.unrecord(instance.key)
        labels = self.alert_labels(instance)
        for told in self.ledger.told_about(instance.key):
            self.ledger.forget(instance.key, told.receiver)
            cancelled = told.status == QUEUED and self.outbox.cancel_unsent_trigger(
                told.receiver, instance.key
            )
            receiver = self.receivers.get(told.receiver)
            reason = decide_resolved(
                told,
                trigger_cancelled=cancelled,
                receiver_known=receiver is not None,
                send_resolved=receiver is not None and receiver.send_resolved,
            )
            if reason is Reason.RECEIVER_GONE:
                log.error(
                    "receiver no longer configured; the resolve cannot be sent",
                    receiver=told.receiver,
                    rule=instance.rule,
                    dedup_key=told.dedup_key,
                )
                self.counters.count(told.receiver, "dropped")
            if not reason.notifies:
                continue
            event = self.renderer.event(instance, "resolve", labels, told.routing_key)
            self.outbox.enqueue(
                told.receiver,
                instance.key,
                replace(event, dedup_key=told.dedup_key),
                group="",
                suffix=f"{instance.resolved_at or now.wall:.3f}",
                delay=0.0,
                now=now,
            )

    def enqueue_test(self, receiver: str, event: Event, now: Clock) -> None:
        """Queue a test event (``monitor test-alert`` through the daemon's outbox)."""
        key = f"test:{event.dedup_key}"
        self.outbox.enqueue(receiver, key, event, group="", suffix=event.action, delay=0.0, now=now)

    # ------------------------------------------------------------------ persistence, roles

    async def flush(self, now: Clock) -> bool:
        """Write what changed through to the state database; True when written (or when
        not leading: a follower writes nothing)."""
        if not self.leader:
            return True
        return await self.persistence.flush(self.state.instances, now)

    def adopt(
        self, data: StateData, now: Clock, *, keep_memory: bool = False, token: int | None = None
    ) -> None:
        """Become the leader with the state stored by the previous one (see
        :meth:`Persistence.adopt`); ``token`` fences every write."""
        self.state = self.persistence.adopt(data, self.state, now, keep_memory=keep_memory)
        self.persistence.token = token
        self.inherited = set()
        self.outbox.active = True
        for name in self.outbox.receivers_waiting():
            self._on_enqueue(name)
        self._on_change()

    def step_down(self) -> None:
        """Another daemon leads now: forget delivery state (it owns it), keep evaluating."""
        self.outbox.active = False
        self.persistence.step_down()
        self.inherited = set()
        self._on_change()

    def lead_in_memory(self, *, inherit: bool = False) -> None:
        """Deliver without a reachable state database (fail-open); written later.

        With ``inherit`` (this process was not the leader, so its delivery record is
        empty) fail-open covers only what this process sees happen from now on: alerts
        already firing are not triggered again (the leader paged them), and nothing is
        written until this process holds the lease."""
        if inherit:
            firing = State.FIRING
            self.inherited = {k for k, i in self.state.instances.items() if i.state is firing}
            self.persistence.writable = False
        self.outbox.active = True
        self._on_change()


def _log(transition: Transition) -> None:
    instance = transition.instance
    state = transition.new.value if transition.new else "inactive"
    fields: dict[str, Any] = {
        "rule": instance.rule,
        "labels": dict(instance.labels),
        "value": instance.value,
    }
    if transition.old is State.PENDING and transition.new is None:
        log.info("alert condition cleared before its for-duration", **fields)
    else:
        log.info(f"alert {state}", **fields)

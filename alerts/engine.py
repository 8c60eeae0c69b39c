"""The alerting engine: evaluation results turned into notifications, kept durable.

The engine holds the authoritative state in memory (alert instances, what each
receiver was told, the outbox) and writes every change through to the state database in
one transaction per step. Only the leader dispatches and delivers; every daemon
evaluates, so a follower that takes over already knows what is pending.

Dispatch rules, per firing instance and routed receiver:

* never told (or silenced last time and the silence has ended): queue a trigger;
* told, still firing, ``repeat_interval`` elapsed: queue a repeat trigger;
* resolved: queue a resolve to every receiver that was (or may have been) told, with the
  receiver, dedup key and routing key of the trigger, whatever the routes say now. A
  trigger still waiting out its ``group_wait`` is simply dropped: the blip is never sent.

A trigger whose delivery attempt finds the alert silenced is dropped and re-queued once
the silence ends; resolves are never silenced (a resolve pages nobody, and a missing one
leaves an incident open).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from alerts import templates
from alerts.evaluator import EvalResult, EvalState, evaluate
from alerts.events import Action, Event
from alerts.instance import AlertInstance, Clock, State, Transition
from alerts.labels import Labels, dedup_key, freeze
from alerts.receivers.base import Receiver, Result
from alerts.regression import History, Point
from alerts.routing import Router
from alerts.rules import RegressionRule, Rule
from alerts.ruleset import RuleSet
from alerts.series import SeriesView
from alerts.silences import Silences
from alerts.statedb.base import StateDb, StateDbError
from alerts.statedb.records import (
    FAILED,
    PENDING,
    QUEUED,
    SENDING,
    SENT,
    SILENCED,
    Changes,
    HistoryRow,
    Notification,
    OutboxRow,
    ReceiverStatus,
    StateData,
    StoredInstance,
)

log = structlog.get_logger("alerts")

REFRESH_INSTANCES = 60.0
"""Firing instances are re-persisted this often (their last value and last-true time)."""
STORE_RETRY = 5.0
"""Seconds between write attempts while the state database is failing."""
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0


def backoff(attempts: int) -> float:
    """Exponential backoff with jitter: 1 s, 2 s, 4 s, ... up to 5 min, times 0.5..1."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** max(0, attempts - 1))
    return ceiling * random.uniform(0.5, 1.0)


@dataclass(slots=True)
class _Dirty:
    instances: set[str] = field(default_factory=set)
    notifications: set[tuple[str, str]] = field(default_factory=set)
    outbox: set[int] = field(default_factory=set)
    receivers: set[str] = field(default_factory=set)
    history: list[HistoryRow] = field(default_factory=list)
    history_reset: list[tuple[str, str]] = field(default_factory=list)
    history_before: dict[str, float] = field(default_factory=dict)

    def merge(self, newer: _Dirty) -> _Dirty:
        """This (unwritten) set followed by ``newer``."""
        return _Dirty(
            self.instances | newer.instances,
            self.notifications | newer.notifications,
            self.outbox | newer.outbox,
            self.receivers | newer.receivers,
            self.history + newer.history,
            self.history_reset + newer.history_reset,
            {**self.history_before, **newer.history_before},
        )


@dataclass(slots=True)
class Counters:
    notifications: dict[tuple[str, str], int] = field(default_factory=dict)
    latencies: list[tuple[str, float]] = field(default_factory=list)
    """(receiver, seconds from queueing to delivery), drained by the metrics collector."""
    last_eval_seconds: float = 0.0
    evaluations: int = 0
    store_errors: int = 0

    def count(self, receiver: str, status: str, n: int = 1) -> None:
        key = (receiver, status)
        self.notifications[key] = self.notifications.get(key, 0) + n


class AlertEngine:
    def __init__(
        self,
        ruleset: RuleSet,
        router: Router,
        silences: Silences,
        receivers: Mapping[str, Receiver],
        store: StateDb,
        *,
        on_enqueue: Callable[[str], None] | None = None,
        on_change: Callable[[], None] | None = None,
        on_receivers_change: Callable[[], None] | None = None,
    ) -> None:
        self.rules = ruleset.rules
        self.rules_by_name: dict[str, Rule] = {r.name: r for r in ruleset.rules}
        self.router = router
        self.silences = silences
        self.receivers = dict(receivers)
        self.store = store
        self.state = EvalState()
        self.notifications: dict[tuple[str, str], Notification] = {}
        self.outbox: dict[int, OutboxRow] = {}
        self.due: dict[int, float] = {}
        """Monotonic time each outbox row is due."""
        self.receiver_status: dict[str, ReceiverStatus] = {}
        self.leader = False
        self.counters = Counters()
        self._dirty = _Dirty()
        self._next_id = 1
        self._refreshed: dict[str, float] = {}
        self._history_pruned = 0.0
        self._flush_lock = asyncio.Lock()
        self._store_failing = False
        self._store_retry_at = 0.0
        self._on_enqueue = on_enqueue or (lambda _: None)
        self._on_change = on_change or (lambda: None)
        self._on_receivers_change = on_receivers_change or (lambda: None)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, view: SeriesView, now: Clock) -> EvalResult:
        result = evaluate(self.rules, view, self.state, now)
        self.state = result.state
        for transition in result.transitions:
            self._log(transition)
        if self.leader:
            self._record(result, now)
            self._dispatch(result.transitions, now)
        self._on_change()
        return result

    def receivers_up(self) -> dict[str, bool]:
        return {
            name: self.receiver_status.get(name) is None
            or self.receiver_status[name].broken_reason is None
            for name in self.receivers
        }

    def alert_labels(self, instance: AlertInstance) -> dict[str, str]:
        rule = self.rules_by_name.get(instance.rule)
        labels = dict(instance.labels)
        if rule is not None:
            labels.update(rule.static_labels)
        labels["alertname"] = instance.rule
        labels["severity"] = instance.severity
        return labels

    def render(self, instance: AlertInstance) -> tuple[str, str]:
        """(summary, description) of an instance, templates applied."""
        rule = self.rules_by_name.get(instance.rule)
        if rule is None:
            return f"{instance.rule} (rule no longer configured)", ""
        ctx = rule.context(instance, self.alert_labels(instance))
        return templates.render(rule.summary, ctx), templates.render(rule.description, ctx)

    def _log(self, transition: Transition) -> None:
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

    def _record(self, result: EvalResult, now: Clock) -> None:
        for transition in result.transitions:
            self._dirty.instances.add(transition.instance.key)
        for key in self.state.instances:
            if now.monotonic - self._refreshed.get(key, -1e18) >= REFRESH_INSTANCES:
                self._dirty.instances.add(key)
        for change in result.history_changes:
            series = json.dumps(change.labels)
            if change.point is None:
                self._dirty.history_reset.append((change.rule, series))
            else:
                p = change.point
                self._dirty.history.append(
                    HistoryRow(change.rule, series, p.wall, p.calls, p.seconds)
                )
        if now.monotonic - self._history_pruned >= 600:
            self._history_pruned = now.monotonic
            for rule in self.rules:
                if isinstance(rule, RegressionRule):
                    self._dirty.history_before[rule.name] = now.wall - rule.settings.horizon

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, transitions: Iterable[Transition], now: Clock) -> None:
        for transition in transitions:
            if transition.resolved:
                self._resolve(transition.instance, now)
        for instance in self.state.instances.values():
            if instance.state is State.FIRING:
                self._notify(instance, now)

    def _notify(self, instance: AlertInstance, now: Clock) -> None:
        labels = self.alert_labels(instance)
        silenced = self.silences.silencing(labels, now.wall) is not None
        for target in self.router.route(labels):
            receiver = self.receivers.get(target.receiver)
            if receiver is None:
                continue
            key = (instance.key, target.receiver)
            record = self.notifications.get(key)
            repeat = False
            if record is not None:
                if record.status == QUEUED:
                    continue
                if record.status in (SENT, FAILED):
                    last = record.last_sent_at or 0.0
                    if target.repeat_interval is None or now.wall - last < target.repeat_interval:
                        continue
                    repeat = True
            if silenced:
                if record is None:
                    self._set_record(
                        Notification(
                            instance.key,
                            target.receiver,
                            dedup_key(instance.rule, instance.labels),
                            receiver.routing_key(),
                            SILENCED,
                        )
                    )
                continue
            routing_key = record.routing_key if record is not None else receiver.routing_key()
            event = self._event(instance, "trigger", labels, routing_key, repeat=repeat)
            delay = 0.0 if repeat else target.group_wait
            group = "|".join(f"{k}={labels.get(k, '')}" for k in target.group_by)
            suffix = f"repeat@{now.wall:.3f}" if repeat else f"{instance.fired_at or 0:.3f}"
            self._enqueue(target.receiver, instance.key, event, group, suffix, delay, now)
            self._set_record(
                Notification(
                    instance.key,
                    target.receiver,
                    event.dedup_key,
                    routing_key,
                    QUEUED,
                    record.first_sent_at if record else None,
                    record.last_sent_at if record else None,
                )
            )

    def _resolve(self, instance: AlertInstance, now: Clock) -> None:
        labels = self.alert_labels(instance)
        for key, record in list(self.notifications.items()):
            if key[0] != instance.key:
                continue
            self._drop_record(key)
            if record.status in (SILENCED, FAILED):
                continue
            cancelled = record.status == QUEUED and self._cancel_unsent_trigger(record)
            if cancelled and record.first_sent_at is None:
                continue  # never sent (still in its group_wait): nothing to resolve
            receiver = self.receivers.get(record.receiver)
            if receiver is None:
                log.error(
                    "receiver no longer configured; the resolve cannot be sent",
                    receiver=record.receiver,
                    rule=instance.rule,
                    dedup_key=record.dedup_key,
                )
                self.counters.count(record.receiver, "dropped")
                continue
            if not receiver.send_resolved:
                continue
            event = self._event(instance, "resolve", labels, record.routing_key)
            event = replace(event, dedup_key=record.dedup_key)
            suffix = f"{instance.resolved_at or now.wall:.3f}"
            self._enqueue(record.receiver, instance.key, event, "", suffix, 0.0, now)

    def _cancel_unsent_trigger(self, record: Notification) -> bool:
        """Drop the queued trigger if no attempt was made yet; True if it was dropped."""
        for row_id, row in list(self.outbox.items()):
            if (
                row.receiver == record.receiver
                and row.instance_key == record.instance_key
                and row.action == "trigger"
                and row.attempts == 0
                and row.state == PENDING
            ):
                self._delete_row(row_id)
                return True
        return False

    def _event(
        self,
        instance: AlertInstance,
        action: Action,
        labels: dict[str, str],
        routing_key: str | None,
        *,
        repeat: bool = False,
    ) -> Event:
        summary, description = self.render(instance)
        rule = self.rules_by_name.get(instance.rule)
        return Event(
            action=action,
            rule=instance.rule,
            severity=instance.severity,
            labels=labels,
            summary=summary,
            description=description,
            value=instance.value,
            threshold=instance.threshold,
            active_at=instance.active_at,
            fired_at=instance.fired_at,
            resolved_at=instance.resolved_at,
            dedup_key=dedup_key(instance.rule, instance.labels),
            runbook_url=rule.runbook_url if rule else None,
            dashboard_url=rule.dashboard_url if rule else None,
            component=instance.job[0] if instance.job else None,
            repeat=repeat,
            routing_key=routing_key,
        )

    def _enqueue(
        self,
        receiver: str,
        instance_key: str,
        event: Event,
        group: str,
        suffix: str,
        delay: float,
        now: Clock,
    ) -> None:
        idem = f"{receiver}|{instance_key}|{event.action}|{suffix}"
        if any(row.idem_key == idem for row in self.outbox.values()):
            return
        row_id = max(self._next_id, int(now.wall * 1000) * 1000)
        self._next_id = row_id + 1
        row = OutboxRow(
            id=row_id,
            receiver=receiver,
            instance_key=instance_key,
            action=event.action,
            group=group,
            idem_key=idem,
            payload=event.to_json(),
            next_attempt_at=now.wall + delay,
            created_at=now.wall,
        )
        self.outbox[row_id] = row
        self.due[row_id] = now.monotonic + delay
        self._dirty.outbox.add(row_id)
        self._on_enqueue(receiver)

    def enqueue_test(self, receiver: str, event: Event, now: Clock) -> None:
        """Queue a test event (``monitor test-alert`` through the daemon's outbox)."""
        self._enqueue(receiver, f"test:{event.dedup_key}", event, "", event.action, 0.0, now)

    # ------------------------------------------------------------------ delivery hooks

    def due_rows(self, receiver: str, now: Clock) -> list[OutboxRow]:
        """Rows ready to send, oldest first; a row waits while an earlier one of the same
        alert (for this receiver) is not ready, so a resolve never overtakes its trigger."""
        blocked: set[str] = set()
        ready: list[OutboxRow] = []
        for row_id in sorted(self.outbox):
            row = self.outbox[row_id]
            if row.receiver != receiver or row.instance_key in blocked:
                continue
            if row.state != PENDING or self.due.get(row_id, 0.0) > now.monotonic:
                blocked.add(row.instance_key)
                continue
            ready.append(row)
        return ready

    def next_due(self, receiver: str, now: Clock) -> float | None:
        waits = [
            self.due.get(row_id, 0.0) - now.monotonic
            for row_id, row in self.outbox.items()
            if row.receiver == receiver and row.state == PENDING
        ]
        return max(0.0, min(waits)) if waits else None

    def pending_count(self) -> int:
        return len(self.outbox)

    def _rows(self, ids: Iterable[int]) -> list[OutboxRow]:
        return [self.outbox[i] for i in ids if i in self.outbox]

    def mark_sending(self, ids: Iterable[int]) -> None:
        for row in self._rows(ids):
            self._put_row(replace(row, state=SENDING, attempts=row.attempts + 1))

    def delivered(self, ids: Iterable[int], now: Clock) -> None:
        self._on_change()
        for row in self._rows(ids):
            self._delete_row(row.id)
            self.counters.count(row.receiver, "success")
            if len(self.counters.latencies) < 10_000:
                self.counters.latencies.append((row.receiver, max(0.0, now.wall - row.created_at)))
            if row.action == "trigger":
                self._sent(row, SENT, now)
            self._receiver_ok(row.receiver)

    def retry(self, ids: Iterable[int], result: Result, now: Clock) -> float:
        """Reschedule after a transient failure; returns the delay chosen."""
        self._on_change()
        delay = 0.0
        for row in self._rows(ids):
            delay = max(backoff(row.attempts), result.retry_after or 0.0)
            self._put_row(
                replace(
                    row,
                    state=PENDING,
                    next_attempt_at=now.wall + delay,
                    last_error=result.detail,
                )
            )
            self.due[row.id] = now.monotonic + delay
            self.counters.count(row.receiver, "retry")
        return delay

    def failed(self, ids: Iterable[int], result: Result, now: Clock) -> None:
        self._on_change()
        receivers = set()
        for row in self._rows(ids):
            receivers.add(row.receiver)
            self._delete_row(row.id)
            self.counters.count(row.receiver, "permanent_error")
            if row.action == "trigger":
                self._sent(row, FAILED, now)
        for name in receivers:
            self._receiver_broken(name, result.detail, now)

    def silenced(self, row: OutboxRow) -> None:
        self._on_change()
        self._delete_row(row.id)
        self.counters.count(row.receiver, "silenced")
        key = (row.instance_key, row.receiver)
        record = self.notifications.get(key)
        if record is not None and record.status == QUEUED:
            status = SILENCED if record.first_sent_at is None else SENT
            self._set_record(replace(record, status=status))

    def _sent(self, row: OutboxRow, status: str, now: Clock) -> None:
        key = (row.instance_key, row.receiver)
        record = self.notifications.get(key)
        if record is None or record.status != QUEUED:
            return
        self._set_record(
            replace(
                record,
                status=status,
                first_sent_at=record.first_sent_at or now.wall,
                last_sent_at=now.wall,
            )
        )

    def _receiver_ok(self, name: str) -> None:
        status = self.receiver_status.get(name)
        if status is not None and status.broken_reason is not None:
            log.info("receiver delivers again", receiver=name)
            self.receiver_status[status.name] = replace(
                status, broken_reason=None, broken_since=None
            )
            self._dirty.receivers.add(status.name)
            self._on_receivers_change()

    def _receiver_broken(self, name: str, reason: str, now: Clock) -> None:
        receiver = self.receivers.get(name)
        if receiver is None:
            return
        log.error(
            "receiver refused a notification permanently; not retrying it",
            receiver=name,
            error=reason,
        )
        current = self.receiver_status.get(name)
        if current is not None and current.broken_reason is not None:
            return
        self.receiver_status[name] = ReceiverStatus(name, receiver.fingerprint(), reason, now.wall)
        self._dirty.receivers.add(name)
        self._on_receivers_change()

    # ------------------------------------------------------------------ memory <-> store

    def _set_record(self, record: Notification) -> None:
        key = (record.instance_key, record.receiver)
        self.notifications[key] = record
        self._dirty.notifications.add(key)

    def _drop_record(self, key: tuple[str, str]) -> None:
        self.notifications.pop(key, None)
        self._dirty.notifications.add(key)

    def _put_row(self, row: OutboxRow) -> None:
        self.outbox[row.id] = row
        self._dirty.outbox.add(row.id)

    def _delete_row(self, row_id: int) -> None:
        self.outbox.pop(row_id, None)
        self.due.pop(row_id, None)
        self._dirty.outbox.add(row_id)

    def _changes(self, d: _Dirty, now: Clock) -> Changes:
        changes = Changes()
        for key in d.instances:
            instance = self.state.instances.get(key)
            if instance is None:
                changes.instances_deleted.append(key)
            else:
                changes.instances.append(StoredInstance.of(instance, now))
        for nkey in d.notifications:
            record = self.notifications.get(nkey)
            if record is None:
                changes.notifications_deleted.append(nkey)
            else:
                changes.notifications.append(record)
        for row_id in d.outbox:
            row = self.outbox.get(row_id)
            if row is None:
                changes.outbox_deleted.append(row_id)
            else:
                changes.outbox.append(row)
        changes.receivers = [self.receiver_status[n] for n in d.receivers]
        changes.history = list(d.history)
        changes.history_reset = list(d.history_reset)
        changes.history_before = dict(d.history_before)
        return changes

    async def flush(self, now: Clock) -> bool:
        """Write what changed; on failure keep it for the next flush. True when written.

        Flushes are serialised, so a newer write never lands before an older one; while
        the store is failing, attempts are spaced by :data:`STORE_RETRY`.
        """
        if not self.leader:
            return True
        async with self._flush_lock:
            if now.monotonic < self._store_retry_at:
                return False
            dirty, self._dirty = self._dirty, _Dirty()
            changes = self._changes(dirty, now)
            if not changes:
                return True
            try:
                await self.store.apply(changes)
            except StateDbError as exc:
                self._dirty = dirty.merge(self._dirty)
                self.counters.store_errors += 1
                self._store_retry_at = now.monotonic + STORE_RETRY
                if not self._store_failing:
                    log.warning("cannot write alert state; will retry", error=str(exc))
                self._store_failing = True
                return False
            if self._store_failing:
                log.info("alert state written again")
                self._store_failing = False
            for key in dirty.instances:
                self._refreshed[key] = now.monotonic
            return True

    def adopt(self, data: StateData, now: Clock, *, keep_memory: bool = False) -> None:
        """Become the leader with the state databased by the previous one.

        Stored instances and delivery state win over this process's own (they record
        what was notified); what only this process knows is kept and written out. With
        ``keep_memory`` (this process delivered from memory while the store was down)
        its own delivery state wins instead.
        """
        stored = {si.key: si.instance(now) for si in data.instances}
        instances = dict(self.state.instances)
        if keep_memory:
            instances = {**stored, **instances}
        else:
            instances.update(stored)
        memory_only = set(instances) - set(stored) if not keep_memory else set(instances)
        history = self._merge_history(data.history, now)
        self.state = EvalState(instances, history)
        notifications = {(n.instance_key, n.receiver): n for n in data.notifications}
        outbox: dict[int, OutboxRow] = {}
        due: dict[int, float] = {}
        for row in data.outbox:
            if row.state == SENDING:
                log.warning(
                    "a delivery was interrupted before its outcome was recorded; sending again",
                    receiver=row.receiver,
                    action=row.action,
                    alert=row.instance_key,
                )
                row = replace(row, state=PENDING)
                self._dirty.outbox.add(row.id)
            outbox[row.id] = row
            due[row.id] = now.monotonic + max(0.0, row.next_attempt_at - now.wall)
        if keep_memory:
            notifications.update(self.notifications)
            outbox.update(self.outbox)
            due.update(self.due)
            self._dirty.notifications |= set(self.notifications)
            self._dirty.outbox |= set(self.outbox)
        self.notifications, self.outbox, self.due = notifications, outbox, due
        self._next_id = max([self._next_id, *(i + 1 for i in outbox)])
        statuses = {s.name: s for s in data.receivers}
        if keep_memory:
            statuses.update(self.receiver_status)
        self.receiver_status = {}
        for status in statuses.values():
            receiver = self.receivers.get(status.name)
            if receiver is not None and receiver.fingerprint() == status.fingerprint:
                self.receiver_status[status.name] = status
        self._dirty.instances |= memory_only
        self._refreshed = {key: now.monotonic for key in stored}
        self.leader = True
        for name in {row.receiver for row in self.outbox.values()}:
            self._on_enqueue(name)
        self._on_change()

    def _merge_history(
        self, rows: Iterable[HistoryRow], now: Clock
    ) -> dict[str, Mapping[Labels, History]]:
        merged: dict[str, dict[Labels, History]] = {
            rule: dict(series) for rule, series in self.state.history.items()
        }
        stored: dict[tuple[str, str], list[Point]] = {}
        for row in rows:
            point = Point(now.monotonic_of(row.at), row.at, row.calls, row.seconds)
            stored.setdefault((row.rule, row.series), []).append(point)
        for (rule, series), points in stored.items():
            labels = freeze(dict(json.loads(series)))
            mine = merged.setdefault(rule, {}).get(labels, ())
            newer = tuple(p for p in mine if p.wall > points[-1].wall)
            merged[rule][labels] = (*points, *newer)
        return dict(merged)

    def step_down(self) -> None:
        """Another daemon leads now: forget delivery state (it owns it), keep evaluating."""
        self.leader = False
        self.notifications = {}
        self.outbox = {}
        self.due = {}
        self._dirty = _Dirty()
        self._on_change()

    def lead_in_memory(self) -> None:
        """Deliver without a reachable store (fail-open); changes are written later."""
        self.leader = True
        self._on_change()

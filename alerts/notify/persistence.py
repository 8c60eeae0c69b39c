"""Persistence: memory written through to the state database, takeover and step-down.

Memory is authoritative. Every change is noted in the :class:`Journal`; :meth:`flush`
writes the journal as one transaction (serialised, so a newer write never lands before
an older one). While the database fails, the journal is kept and writes are retried
every :data:`DB_RETRY` seconds: alerting goes on from memory.

:meth:`adopt` is the takeover: a daemon that becomes the leader loads what the previous
one stored (firing alerts stay firing without a new page, queued notifications go out).
:meth:`step_down` forgets the delivery state when another daemon leads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog

from alerts.evaluator import EvalResult, EvalState
from alerts.instance import AlertInstance, Clock
from alerts.labels import Labels, freeze
from alerts.notify.counters import Counters
from alerts.notify.journal import Journal
from alerts.notify.ledger import Ledger
from alerts.notify.outbox import Outbox
from alerts.rules.kinds import RegressionRule, Rule
from alerts.rules.regression import History, Point
from alerts.statedb.base import StateDb, StateDbError
from alerts.statedb.lease import Fenced
from alerts.statedb.records import Changes, HistoryRow, StateData, StoredInstance

log = structlog.get_logger("alerts")

REFRESH_INSTANCES = 60.0
"""Firing instances are re-persisted this often (their last value and last-true time)."""
DB_RETRY = 5.0
"""Seconds between write attempts while the state database is failing."""
PRUNE_HISTORY = 600.0
"""Seconds between prunings of regression history older than twice each rule's horizon:
the points a history drops are deleted as it drops them; this removes the series that
stopped (a query evicted, a target removed), which memory forgets after one horizon."""


class Persistence:
    def __init__(
        self,
        db: StateDb,
        journal: Journal,
        ledger: Ledger,
        outbox: Outbox,
        counters: Counters,
        *,
        on_fenced: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.token: int | None = None
        """The fencing token every write carries (None: a store without leases)."""
        self.writable = True
        """False while this process delivers without ever having held the lease (a
        follower that lost the store): its memory must not overwrite the leader's."""
        self._on_fenced = on_fenced or (lambda: None)
        self._journal = journal
        self._ledger = ledger
        self._outbox = outbox
        self._counters = counters
        self._refreshed: dict[str, float] = {}
        self._history_pruned = 0.0
        self._lock = asyncio.Lock()
        self._failing = False
        self._retry_at = 0.0

    def record(self, result: EvalResult, rules: Sequence[Rule], now: Clock) -> None:
        """Note what an evaluation changed: instances, regression history."""
        journal = self._journal
        for transition in result.transitions:
            journal.instances.add(transition.instance.key)
        for key in result.state.instances:
            if now.monotonic - self._refreshed.get(key, -1e18) >= REFRESH_INSTANCES:
                journal.instances.add(key)
        for change in result.history_changes:
            series = json.dumps(change.labels)
            if change.point is None:
                journal.history_reset.append((change.rule, series))
            elif change.dropped:
                journal.history_dropped.append((change.rule, series, change.point.wall))
            else:
                p = change.point
                journal.history.append(HistoryRow(change.rule, series, p.wall, p.calls, p.seconds))
        if now.monotonic - self._history_pruned >= PRUNE_HISTORY:
            self._history_pruned = now.monotonic
            for rule in rules:
                if isinstance(rule, RegressionRule):
                    journal.history_before[rule.name] = now.wall - 2 * rule.settings.horizon

    async def flush(self, instances: Mapping[str, AlertInstance], now: Clock) -> bool:
        """Write what changed; on failure keep it for the next flush. True when written."""
        async with self._lock:
            if now.monotonic < self._retry_at or not self.writable:
                return False
            taken = self._journal.take()
            changes = self._changes(taken, instances, now)
            if not changes:
                return True
            try:
                await self.db.apply(changes, self.token)
            except Fenced as exc:
                log.warning(
                    "another daemon took the leadership lease; stepping down", error=str(exc)
                )
                self._journal.clear()
                self._on_fenced()
                return False
            except StateDbError as exc:
                self._journal.put_back(taken)
                self._counters.statedb_errors += 1
                self._retry_at = now.monotonic + DB_RETRY
                if not self._failing:
                    log.warning("cannot write alert state; will retry", error=str(exc))
                self._failing = True
                return False
            if self._failing:
                log.info("alert state written again")
                self._failing = False
            for key in taken.instances:
                self._refreshed[key] = now.monotonic
            return True

    def _changes(
        self, taken: Journal, instances: Mapping[str, AlertInstance], now: Clock
    ) -> Changes:
        changes = Changes()
        for key in taken.instances:
            instance = instances.get(key)
            if instance is None:
                changes.instances_deleted.append(key)
            else:
                changes.instances.append(StoredInstance.of(instance, now))
        for nkey in taken.notifications:
            record = self._ledger.notifications.get(nkey)
            if record is None:
                changes.notifications_deleted.append(nkey)
            else:
                changes.notifications.append(record)
        for row_id in taken.outbox:
            row = self._outbox.rows.get(row_id)
            if row is None:
                changes.outbox_deleted.append(row_id)
            else:
                changes.outbox.append(row)
        changes.receivers = [self._ledger.receiver_status[n] for n in taken.receivers]
        changes.history = list(taken.history)
        changes.history_reset = list(taken.history_reset)
        changes.history_dropped = list(taken.history_dropped)
        changes.history_before = dict(taken.history_before)
        return changes

    def adopt(
        self, data: StateData, state: EvalState, now: Clock, *, keep_memory: bool
    ) -> EvalState:
        """The evaluation state once this daemon leads with what the previous leader stored.

        Stored instances and delivery state win over this process's own (they record what
        was notified); what only this process knows is kept and written out. With
        ``keep_memory`` (this process delivered from memory while the database was down)
        its own state wins instead.
        """
        stored = {si.key: si.instance(now) for si in data.instances}
        instances = dict(state.instances)
        if keep_memory:  # an alert resolved while the store was down stays resolved
            gone = self._journal.instances - set(instances)
            stored = {k: v for k, v in stored.items() if k not in gone}
            instances = {**stored, **instances}
        else:
            instances.update(stored)
        memory_only = set(instances) - set(stored) if not keep_memory else set(instances)
        history = _merge_history(state.history, data.history, now)
        self._outbox.adopt(data.outbox, now, keep_memory=keep_memory)
        self._ledger.adopt(data.notifications, data.receivers, keep_memory=keep_memory)
        self._journal.instances |= memory_only
        self._refreshed = {key: now.monotonic for key in stored}
        self.writable = True
        return EvalState(instances, history)

    def unrecord(self, key: str) -> None:
        """Do not write this instance's change: an alert another daemon paged resolved
        while this one delivered without the store; the stored record stays, so the
        leader with the store sends its resolve."""
        self._journal.instances.discard(key)

    def step_down(self) -> None:
        """Another daemon leads: forget the delivery state (it owns it) and the journal."""
        self._ledger.clear()
        self._outbox.clear()
        self._journal.clear()
        self.writable = False


def _merge_history(
    mine: Mapping[str, Mapping[Labels, History]], rows: Iterable[HistoryRow], now: Clock
) -> dict[str, Mapping[Labels, History]]:
    """Stored regression history, followed by this process's newer points."""
    merged: dict[str, dict[Labels, History]] = {rule: dict(series) for rule, series in mine.items()}
    stored: dict[tuple[str, str], list[Point]] = {}
    for row in rows:
        point = Point(now.monotonic_of(row.at), row.at, row.calls, row.seconds)
        stored.setdefault((row.rule, row.series), []).append(point)
    for (rule, series), points in stored.items():
        labels = freeze(dict(json.loads(series)))
        own = merged.setdefault(rule, {}).get(labels, ())
        newer = tuple(p for p in own if p.wall > points[-1].wall)
        merged[rule][labels] = (*points, *newer)
    return dict(merged)

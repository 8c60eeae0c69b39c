"""The outbox: notifications waiting to be delivered, and the outcome of each attempt.

Delivery talks only to the outbox. It asks for the :meth:`~Outbox.due_rows` of a
receiver, marks them :meth:`~Outbox.sending`, saves (write-through, before the request),
and reports one outcome:

* :meth:`~Outbox.delivered`: the rows are removed, the ledger says ``sent`` and the
  receiver is healthy again;
* :meth:`~Outbox.retry`: the rows wait for :func:`backoff` (at least ``Retry-After``);
* :meth:`~Outbox.failed`: the rows are dropped, the ledger says ``failed`` and the
  receiver is marked broken;
* :meth:`~Outbox.silenced`: a trigger found silenced at delivery time is dropped.

Rows are indexed by idempotency key (queueing the same decision twice is a no-op) and
per receiver in id order, so neither queueing nor finding due rows scans the outbox.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace

import structlog

from alerts.instance import Clock
from alerts.notify.counters import Counters
from alerts.notify.events import Event
from alerts.notify.journal import Journal
from alerts.notify.ledger import Ledger
from alerts.notify.split import Splits
from alerts.receivers.base import Result
from alerts.statedb.records import FAILED, PENDING, SENDING, SENT, OutboxRow

log = structlog.get_logger("alerts")

BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0


def backoff(attempts: int) -> float:
    """Exponential backoff with jitter: 1 s, 2 s, 4 s, ... up to 5 min, times 0.5..1."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** max(0, attempts - 1))
    return ceiling * random.uniform(0.5, 1.0)


async def _no_save(_: Clock) -> bool:
    return True


class Outbox:
    def __init__(
        self,
        ledger: Ledger,
        journal: Journal,
        counters: Counters,
        *,
        save: Callable[[Clock], Awaitable[bool]] = _no_save,
        on_enqueue: Callable[[str], None] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.rows: dict[int, OutboxRow] = {}
        self.due: dict[int, float] = {}
        """Monotonic time each row is due."""
        self.active = False
        """True while this daemon delivers (the leader, or degraded)."""
        self.splits = Splits()
        """Rows of refused coalesced messages, to send one by one (used by delivery)."""
        self._by_idem: dict[str, int] = {}
        self._by_receiver: dict[str, list[int]] = {}
        self._next_id = 1
        self._ledger = ledger
        self._journal = journal
        self._counters = counters
        self._save = save
        self._on_enqueue = on_enqueue or (lambda _: None)
        self._on_change = on_change or (lambda: None)

    def __len__(self) -> int:
        return len(self.rows)

    # ------------------------------------------------------------------ queueing

    def enqueue(
        self,
        receiver: str,
        instance_key: str,
        event: Event,
        *,
        group: str,
        suffix: str,
        delay: float,
        now: Clock,
    ) -> bool:
        """Queue ``event`` for ``receiver`` in ``delay`` seconds; False when this decision
        (same receiver, alert, action and ``suffix``) is already queued."""
        idem = f"{receiver}|{instance_key}|{event.action}|{suffix}"
        if idem in self._by_idem:
            return False
        row_id = max(self._next_id, int(now.wall * 1000) * 1000)
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
        self._put(row, now.monotonic + delay)
        self._on_enqueue(receiver)
        return True

    def cancel_unsent_trigger(self, receiver: str, instance_key: str) -> bool:
        """Drop the alert's queued trigger if no attempt was made yet; True if dropped."""
        for row_id in self._by_receiver.get(receiver, ()):
            row = self.rows[row_id]
            if (
                row.instance_key == instance_key
                and row.action == "trigger"
                and row.attempts == 0
                and row.state == PENDING
            ):
                self._delete(row_id)
                return True
        return False

    # ------------------------------------------------------------------ for delivery

    def due_rows(self, receiver: str, now: Clock, limit: int | None = None) -> list[OutboxRow]:
        """Rows ready to send, oldest first (at most ``limit``); a row waits while an
        earlier one of the same alert (for this receiver) is not ready, so a resolve
        never overtakes its trigger."""
        blocked: set[str] = set()
        ready: list[OutboxRow] = []
        for row_id in self._by_receiver.get(receiver, ()):
            if limit is not None and len(ready) >= limit:
                break
            row = self.rows[row_id]
            if row.instance_key in blocked:
                continue
            if row.state != PENDING or self.due.get(row_id, 0.0) > now.monotonic:
                blocked.add(row.instance_key)
                continue
            ready.append(row)
        return ready

    def next_due(self, receiver: str, now: Clock) -> float | None:
        """Seconds until the receiver's next pending row is due (None: no pending row)."""
        waits = [
            self.due.get(row_id, 0.0) - now.monotonic
            for row_id in self._by_receiver.get(receiver, ())
            if self.rows[row_id].state == PENDING
        ]
        return max(0.0, min(waits)) if waits else None

    def sending(self, ids: Iterable[int]) -> None:
        for row in self._rows(ids):
            self._replace(replace(row, state=SENDING, attempts=row.attempts + 1))

    async def save(self, now: Clock) -> bool:
        """Write what changed through to the state database (True when written)."""
        return await self._save(now)

    def delivered(self, ids: Iterable[int], now: Clock) -> None:
        self._on_change()
        for row in self._rows(ids):
            self._delete(row.id)
            self._counters.count(row.receiver, "success")
            self._counters.latency(row.receiver, now.wall - row.created_at)
            if row.action == "trigger":
                self._ledger.trigger_done(row.instance_key, row.receiver, SENT, now)
            self._ledger.receiver_ok(row.receiver)

    def retry(
        self, ids: Iterable[int], result: Result, now: Clock, *, at_once: bool = False
    ) -> float:
        """Reschedule after a transient failure (``at_once``: due now); returns the delay
        chosen."""
        self._on_change()
        delay = 0.0
        for row in self._rows(ids):
            delay = 0.0 if at_once else max(backoff(row.attempts), result.retry_after or 0.0)
            self._replace(
                replace(
                    row, state=PENDING, next_attempt_at=now.wall + delay, last_error=result.detail
                )
            )
            self.due[row.id] = now.monotonic + delay
            self._counters.count(row.receiver, "retry")
        return delay

    def unsend(self, ids: Iterable[int]) -> None:
        """Rows marked ``sending`` that were not sent after all (leadership lost)."""
        for row in self._rows(ids):
            self._replace(replace(row, state=PENDING, attempts=max(0, row.attempts - 1)))

    def failed(
        self, ids: Iterable[int], result: Result, now: Clock, *, broken: bool = True
    ) -> None:
        """Drop rows refused for good; ``broken``: mark their receiver broken."""
        self._on_change()
        receivers = set()
        for row in self._rows(ids):
            receivers.add(row.receiver)
            self._delete(row.id)
            self._counters.count(row.receiver, "permanent_error")
            if row.action == "trigger":
                self._ledger.trigger_done(row.instance_key, row.receiver, FAILED, now)
        for name in receivers if broken else ():
            self._ledger.receiver_broken(name, result.detail, now)

    def receiver_broken(self, name: str, reason: str, now: Clock) -> None:
        self._on_change()
        self._ledger.receiver_broken(name, reason, now)

    def silenced(self, row: OutboxRow) -> None:
        self._on_change()
        self._delete(row.id)
        self._counters.count(row.receiver, "silenced")
        self._ledger.trigger_silenced(row.instance_key, row.receiver)

    # ------------------------------------------------------------------ leadership

    def adopt(self, rows: Iterable[OutboxRow], now: Clock, *, keep_memory: bool) -> None:
        """Take over the stored rows (a row left ``sending`` is sent again); with
        ``keep_memory`` this process's own rows win and are written out."""
        mine = [(row, self.due[row.id]) for row in self.rows.values()]
        gone = self._journal.outbox - set(self.rows) if keep_memory else set()
        self.clear()
        for row in rows:
            if row.id in gone:
                continue  # delivered (or dropped) from memory while the store was down
            if row.state == SENDING:
                log.warning(
                    "a delivery was interrupted before its outcome was recorded; sending again",
                    receiver=row.receiver,
                    action=row.action,
                    alert=row.instance_key,
                )
                row = replace(row, state=PENDING)
                self._journal.outbox.add(row.id)
            self._index(row, now.monotonic + max(0.0, row.next_attempt_at - now.wall))
        if keep_memory:
            for row, due in mine:
                self._put(row, due)

    def clear(self) -> None:
        self.rows, self.due, self._by_idem, self._by_receiver = {}, {}, {}, {}

    def receivers_waiting(self) -> set[str]:
        return set(self._by_receiver)

    # ------------------------------------------------------------------ rows and indexes

    def _rows(self, ids: Iterable[int]) -> list[OutboxRow]:
        return [self.rows[i] for i in ids if i in self.rows]

    def _put(self, row: OutboxRow, due: float) -> None:
        self._index(row, due)
        self._journal.outbox.add(row.id)

    def _index(self, row: OutboxRow, due: float) -> None:
        if row.id in self.rows:
            self._unindex(row.id)
        self.rows[row.id] = row
        self.due[row.id] = due
        self._by_idem[row.idem_key] = row.id
        bisect.insort(self._by_receiver.setdefault(row.receiver, []), row.id)
        self._next_id = max(self._next_id, row.id + 1)

    def _replace(self, row: OutboxRow) -> None:
        """Same row, new state (its indexed fields do not change)."""
        self.rows[row.id] = row
        self._journal.outbox.add(row.id)

    def _delete(self, row_id: int) -> None:
        self._unindex(row_id)
        self._journal.outbox.add(row_id)

    def _unindex(self, row_id: int) -> None:
        row = self.rows.pop(row_id, None)
        self.due.pop(row_id, None)
        if row is None:
            return
        if self._by_idem.get(row.idem_key) == row_id:
            del self._by_idem[row.idem_key]
        ids = self._by_receiver.get(row.receiver, [])
        at = bisect.bisect_left(ids, row_id)
        if at < len(ids) and ids[at] == row_id:
            del ids[at]
        if not ids:
            self._by_receiver.pop(row.receiver, None)

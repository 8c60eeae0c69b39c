"""Delivery: one worker per receiver draining the outbox, at-least-once.

Delivery talks only to the :class:`~alerts.notify.outbox.Outbox`. Each
:meth:`Delivery.step` for a receiver:

1. waits out the receiver's pace (``min_interval``: one message a second for Slack)
   and any ``Retry-After`` pause;
2. takes the due rows (oldest first, never a resolve before its trigger), checks every
   trigger against the silences again (a silence added during retries stops them);
3. records the rows as ``sending`` (durably, before the request), sends one message
   (coalescing receivers) or one event (PagerDuty), and records the outcome:
   delivered rows are removed, transient failures rescheduled with exponential backoff
   and jitter (at least ``Retry-After``), permanent failures dropped with the receiver
   marked broken. A coalesced message refused permanently is split: its alerts are
   sent one by one (:mod:`alerts.notify.split`), and resolves are never dropped.

Nothing is sent unless ``permit()`` says so (the leadership lease is valid by this
process's clock, or the daemon delivers degraded); it is asked again after the rows are
recorded ``sending``, as that write may find the fencing token stale.

A crash between the request and recording its outcome leaves the row ``sending``; the
next leader sends it again. For PagerDuty the repeated event carries the same
``dedup_key`` and changes nothing; for Slack it may post the message twice, which is
the chosen trade-off: a duplicate message rather than a lost one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping

import structlog

from alerts.instance import Clock
from alerts.notify.events import Event
from alerts.notify.outbox import Outbox
from alerts.receivers.base import Outcome, Receiver, Result
from alerts.silences import Silences
from monitor.kernel.redact import redact

log = structlog.get_logger("alerts.delivery")

NOT_PERMITTED_POLL = 0.5
"""Seconds between checks while leading without a valid lease (until renewed or lost)."""


def system_clock() -> Clock:
    return Clock(time.monotonic(), time.time())


class Delivery:
    def __init__(
        self,
        outbox: Outbox,
        receivers: Mapping[str, Receiver],
        silences: Silences,
        *,
        clock: Callable[[], Clock] = system_clock,
        permit: Callable[[], bool] = lambda: True,
    ) -> None:
        self.outbox = outbox
        self.permit = permit
        self.splits = outbox.splits
        self.receivers = dict(receivers)
        self.silences = silences
        self.clock = clock
        self._next_allowed: dict[str, float] = {}
        self._paused_until: dict[str, float] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.in_flight = 0

    def wake(self, receiver: str) -> None:
        event = self._wake.get(receiver)
        if event is not None:
            event.set()

    async def step(self, name: str) -> float | None:
        """Try one delivery for ``name``; the seconds to wait before the next try
        (0: go again now), or None when there is nothing to do until woken."""
        if not self.outbox.active:
            self.splits.clear()
            return None
        if not self.permit():
            return NOT_PERMITTED_POLL
        receiver = self.receivers[name]
        now = self.clock()
        hold = max(
            self._paused_until.get(name, 0.0) - now.monotonic,
            self._next_allowed.get(name, 0.0) - now.monotonic,
        )
        # one request per alert: the first ready row is enough (no scan of the rest)
        rows = self.outbox.due_rows(name, now, limit=None if receiver.coalesce else 1)
        if not rows:
            return self.outbox.next_due(name, now)
        if hold > 0:
            return hold
        batch: list[tuple[int, Event]] = []
        group = ""
        muted = False
        alone = self.splits.alone
        for row in rows:
            # rows that cannot join this message are not even decoded (cheap per step)
            if batch and (
                not receiver.coalesce or row.group != group or {row.id, batch[0][0]} & alone
            ):
                continue
            event = Event.from_json(row.payload)
            if event.firing and self.silences.silencing(event.labels, now.wall) is not None:
                log.info("delivery stopped by a silence", receiver=name, rule=event.rule)
                self.outbox.silenced(row)
                muted = True
                continue
            group = row.group
            batch.append((row.id, event))
        if not batch:
            if muted:
                await self.outbox.save(now)
            return 0.0
        ids = [row_id for row_id, _ in batch]
        self.outbox.sending(ids)
        await self.outbox.save(now)
        if not self.outbox.active:
            return None  # fenced by the write: another daemon leads
        if not self.permit():
            self.outbox.unsend(ids)
            return NOT_PERMITTED_POLL
        self._next_allowed[name] = now.monotonic + receiver.min_interval
        self.in_flight += 1
        try:
            result = await receiver.send([event for _, event in batch])
        except Exception as exc:  # a bug in a receiver must not kill the worker
            log.exception("receiver raised", receiver=name)
            result = Result(Outcome.RETRY, redact(f"{type(exc).__name__}: {exc}"))
        finally:
            self.in_flight -= 1
        done = self.clock()
        self._record(name, ids, result, done, coalesce=receiver.coalesce)
        await self.outbox.save(done)
        return 0.0

    def _record(
        self, name: str, ids: list[int], result: Result, now: Clock, *, coalesce: bool = False
    ) -> None:
        if result.outcome is Outcome.DELIVERED:
            self.outbox.delivered(ids, now)
            self.splits.finish(name, ids, delivered=True, reason="", keep=False)
            log.debug("notification delivered", receiver=name, count=len(ids))
        elif result.outcome is Outcome.PERMANENT and coalesce:
            self._refused(name, ids, result, now)
        elif result.outcome is Outcome.RETRY:
            delay = self.outbox.retry(ids, result, now)
            if result.retry_after:
                self._paused_until[name] = now.monotonic + result.retry_after
            log.warning(
                "notification failed; will retry",
                receiver=name,
                error=result.detail,
                retry_in=round(delay, 1),
            )
        else:
            self.outbox.failed(ids, result, now)

    def _refused(self, name: str, ids: list[int], result: Result, now: Clock) -> None:
        """A coalescing receiver refused a message for good (see :mod:`~.split`)."""
        if len(ids) > 1:
            log.warning(
                "message refused permanently; sending its alerts one by one",
                receiver=name,
                count=len(ids),
                error=result.detail,
            )
            self.splits.start(name, ids, result.detail)
            self.outbox.retry(ids, result, now, at_once=True)
            return
        rows = [self.outbox.rows[i] for i in ids if i in self.outbox.rows]
        resolves = [r.id for r in rows if r.action != "trigger"]
        triggers = [r.id for r in rows if r.action == "trigger"]
        if resolves:
            log.error(
                "resolve refused permanently; retrying it (a resolve is never dropped)",
                receiver=name,
                error=result.detail,
            )
            self.outbox.retry(resolves, result, now)
        if triggers:
            self.outbox.failed(triggers, result, now, broken=False)
        broken = self.splits.finish(
            name, ids, delivered=False, reason=result.detail, keep=bool(resolves)
        )
        if broken is not None:
            self.outbox.receiver_broken(name, broken, now)
        if resolves:
            self.splits.alone.update(resolves)

    # ------------------------------------------------------------------ workers

    def start(self) -> None:
        for name in self.receivers:
            self._wake[name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._run(name), name=f"deliver-{name}"))

    async def _run(self, name: str) -> None:
        wake = self._wake[name]
        while not self._stopping:
            try:
                wait = await self.step(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery step failed", receiver=name)
                wait = 1.0
            if wait == 0:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wake.wait()
            wake.clear()

    async def drain(self, deadline: float) -> None:
        """Deliver what is due before ``deadline`` (monotonic), e.g. at shutdown."""
        while time.monotonic() < deadline and self.outbox.active:
            waits = []
            for name in self.receivers:
                try:
                    async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                        wait = await self.step(name)
                except TimeoutError:
                    return
                if wait is not None:
                    waits.append(wait)
            if not waits:
                return
            pause = min(waits)
            if pause > deadline - time.monotonic():
                return
            await asyncio.sleep(pause)

    async def stop(self, grace: float = 5.0) -> None:
        """Let requests in flight finish (up to ``grace`` seconds), then stop the workers."""
        self._stopping = True
        for event in self._wake.values():
            event.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks = []

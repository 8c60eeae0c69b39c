"""Leadership: which daemon dispatches and delivers, and what happens when that changes.

Leadership is a lease with a fencing token (:mod:`alerts.statedb.lease`). Roles:

* **leader**: holds the lease and renews it every ``state.lease_renew``; persists state,
  dispatches and delivers. Every write carries the fencing token; delivery stops as soon
  as the lease has run out by this process's own clock (a process resumed after SIGSTOP
  sends nothing before it has renewed, and renewing with a stale token fails).
* **follower**: another daemon leads (Heroku starts the new dyno before the old one
  stops); it evaluates in memory, serves ``/alerts``, and tries to take the lease every
  ``state.lock_retry``. On taking over it loads the stored state, so firing alerts stay
  firing without a new page and resolves still go out.
* **degraded**: the state database cannot be reached; the daemon delivers from memory
  (fail-open: a PostgreSQL outage must still page) and writes the state once it can.

Fail-open covers only what this process saw itself. A leader whose lease was still
valid when the store went away keeps its full memory. A follower waits out the lease
it last saw (the leader is probably still delivering), then delivers only for alerts
it sees start firing from then on: alerts already firing were paged by the leader and
are not triggered again from an empty memory (their resolves are sent by whichever
daemon leads once the store is back, from the stored record).

A vanished leader is replaced within ``lease + lock_retry`` (35 s with the defaults)
plus one connect and load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from alerts.instance import Clock, State
from alerts.notify.coordinator import AlertEngine
from alerts.notify.delivery import system_clock
from alerts.statedb import StateDb, StateDbError

log = structlog.get_logger("alerts")


class Leadership:
    def __init__(
        self,
        db: StateDb,
        engine: AlertEngine,
        *,
        retry: float,
        renew: float | None = None,
        lease: float = 30.0,
        on_lead: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.lock = db.leadership()
        self.engine = engine
        self.retry = retry
        self.renew = renew if renew is not None else retry
        self.lease = lease
        self.role = "starting"
        self._opened = False
        self._last_contact: float | None = None
        """Monotonic time the store last answered a leadership request."""
        self._standing_by = False
        self._on_lead = on_lead or (lambda: None)

    def may_deliver(self) -> bool:
        """True while this process may send notifications."""
        if self.role == "degraded":
            return True
        return self.role == "leader" and self.lock.fresh()

    async def elect(self, now: Clock) -> None:
        """Try to become (or stay) the leader; take over the stored state on winning."""
        try:
            if not self._opened:
                await self.db.open()
                self._opened = True
            got = await self.lock.try_acquire()
        except StateDbError as exc:
            self.degrade(str(exc))
            return
        self._last_contact = time.monotonic()
        self._standing_by = False
        if not got:
            if self.role != "follower":
                log.info("another daemon is the alerting leader; standing by")
                self.engine.step_down()
                self.role = "follower"
            return
        if self.role == "leader":
            return
        try:
            data = await self.db.load()
        except StateDbError as exc:
            await self.lock.release()
            self.degrade(str(exc))
            return
        self.engine.adopt(data, now, keep_memory=self.role == "degraded", token=self.lock.token)
        previous, self.role = self.role, "leader"
        await self.engine.flush(now)
        log.info(
            "alerting leader",
            previously=previous,
            token=self.lock.token,
            firing=sum(1 for i in self.engine.state.instances.values() if i.state is State.FIRING),
            queued=self.engine.pending_count(),
        )
        self._on_lead()

    def degrade(self, reason: str) -> None:
        """The state database cannot be reached: deliver from memory, within what this
        process saw itself (see the module docstring)."""
        if self.role == "degraded":
            return
        if self.role == "leader" and self.lock.fresh():
            log.error(
                "alert state store unreachable; delivering from memory until it is back",
                error=reason,
            )
            self.role = "degraded"
            self.engine.lead_in_memory()
            return
        if self.role == "leader":  # the lease ran out first: another daemon may lead now
            log.warning("leadership lease ran out while the store was unreachable", error=reason)
            self.engine.step_down()
            self.role = "follower"
        since = None if self._last_contact is None else time.monotonic() - self._last_contact
        if self.role == "follower" and since is not None and since < self.lease:
            if not self._standing_by:
                log.warning(
                    "alert state store unreachable; the leader's lease may still run, standing by",
                    error=reason,
                    at_most=round(self.lease - since, 1),
                )
                self._standing_by = True
            return
        log.error(
            "alert state store unreachable and no leader seen; delivering what starts "
            "firing from now on, from memory",
            error=reason,
        )
        self.role = "degraded"
        self.engine.lead_in_memory(inherit=True)

    async def run(self) -> None:
        """Renew the lease every ``renew`` seconds while leading, else try to take it
        every ``retry`` seconds (until cancelled)."""
        while True:
            await asyncio.sleep(self.renew if self.role == "leader" else self.retry)
            try:
                if self.role == "leader":
                    try:
                        held = await self.lock.still_held()
                    except StateDbError as exc:
                        self.degrade(str(exc))
                        continue
                    if held:
                        self._last_contact = time.monotonic()
                        continue
                    log.warning("leadership lease lost to another daemon")
                await self.elect(system_clock())
            except Exception:
                log.exception("leader election failed")

    async def release(self) -> None:
        await self.lock.release()

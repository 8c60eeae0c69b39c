"""Leadership: which daemon dispatches and delivers, and what happens when that changes.

Roles:

* **leader**: holds the lock (``flock`` on the SQLite file, or a PostgreSQL advisory
  lock); persists state, dispatches and delivers.
* **follower**: another daemon leads (Heroku starts the new dyno before the old one
  stops); it evaluates in memory, serves ``/alerts``, and retries the lock every
  ``state.lock_retry``. On taking over it loads the stored state, so firing alerts stay
  firing without a new page and resolves still go out.
* **degraded**: the state database cannot be reached; the daemon delivers from memory
  (fail-open: a PostgreSQL outage must still page) and writes the state once it can.
"""

from __future__ import annotations

import asyncio
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
        on_lead: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.lock = db.leadership()
        self.engine = engine
        self.retry = retry
        self.role = "starting"
        self._opened = False
        self._on_lead = on_lead or (lambda: None)

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
        self.engine.adopt(data, now, keep_memory=self.role == "degraded")
        previous, self.role = self.role, "leader"
        await self.engine.flush(now)
        log.info(
            "alerting leader",
            previously=previous,
            firing=sum(1 for i in self.engine.state.instances.values() if i.state is State.FIRING),
            queued=self.engine.pending_count(),
        )
        self._on_lead()

    def degrade(self, reason: str) -> None:
        """Deliver from memory: the state database cannot be reached."""
        if self.role != "degraded":
            log.error(
                "alert state store unreachable; delivering from memory until it is back",
                error=reason,
            )
        self.role = "degraded"
        self.engine.lead_in_memory()

    async def run(self) -> None:
        """Keep checking the lock every ``retry`` seconds (until cancelled)."""
        while True:
            await asyncio.sleep(self.retry)
            try:
                if self.role == "leader":
                    try:
                        held = await self.lock.still_held()
                    except StateDbError as exc:
                        self.degrade(str(exc))
                        continue
                    if held:
                        continue
                await self.elect(system_clock())
            except Exception:
                log.exception("leader election failed")

    async def release(self) -> None:
        await self.lock.release()

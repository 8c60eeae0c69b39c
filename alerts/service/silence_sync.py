"""Runtime silences kept in step with the state database (added by any dyno or the CLI)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from alerts.runtime_silences import load_into
from alerts.silences import Silences
from alerts.statedb import StateDb, StateDbError

log = structlog.get_logger("alerts")

SILENCE_POLL = 2.0
"""Seconds between re-reads of the runtime silences."""


class SilenceSync:
    def __init__(
        self, db: StateDb, silences: Silences, *, on_change: Callable[[], None] | None = None
    ) -> None:
        self.db = db
        self.silences = silences
        self._on_change = on_change or (lambda: None)
        self._failing = False

    async def refresh(self) -> bool:
        """Re-read the runtime silences; False when they cannot be read (the last ones
        read stay in force)."""
        try:
            changed = await load_into(self.db, self.silences)
        except StateDbError as exc:
            if not self._failing:
                log.warning("cannot read runtime silences; keeping the last ones", error=str(exc))
            self._failing = True
            return False
        if self._failing:
            log.info("runtime silences read again")
            self._failing = False
        if changed:
            self._on_change()
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(SILENCE_POLL)
            try:
                await self.refresh()
            except Exception:
                log.exception("reading runtime silences failed")

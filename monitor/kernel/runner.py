"""Run one collector job once: hard timeout, snapshot, self-metrics, state-change logs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from monitor.kernel.redact import describe_error
from monitor.kernel.snapshot import Snapshot
from monitor.kernel.snapshot_store import SnapshotStore
from monitor.kernel.source import CollectorJob

log = structlog.get_logger("monitor.runner")


class JobRunner:
    """Runs jobs and records their outcome in the store.

    A job that raises or overruns its timeout stores its ``failure_samples`` (e.g.
    ``pg_up 0``) in place of its last values. A change of state (up -> down, down -> up,
    or a different error) is logged once; repeated identical failures are not.
    """

    def __init__(
        self,
        store: SnapshotStore,
        *,
        wall_clock: Callable[[], float] = time.time,
        on_run: Callable[[CollectorJob, Snapshot], None] | None = None,
    ) -> None:
        self._store = store
        self._wall_clock = wall_clock
        self._on_run = on_run
        self._last_state: dict[tuple[str, str], tuple[bool, str | None]] = {}

    async def run(self, job: CollectorJob) -> Snapshot:
        started_wall = self._wall_clock()
        started = time.perf_counter()
        outcome = "success"
        error: str | None = None
        try:
            async with asyncio.timeout(job.timeout):
                samples = tuple(await job.collect())
        except TimeoutError:
            outcome, error = "timeout", f"timed out after {job.timeout:g}s"
            job.on_timeout()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome, error = "error", describe_error(exc)
        if error is not None:
            samples = tuple(job.failure_samples())
        snapshot = Snapshot(
            collector=job.collector,
            target=job.target,
            samples=samples,
            ok=error is None,
            started_at=started_wall,
            duration=time.perf_counter() - started,
            error=error,
        )
        self._store.put(snapshot, outcome, job.interval)
        self._log_change(job, snapshot)
        if self._on_run is not None:
            self._on_run(job, snapshot)
        return snapshot

    def _log_change(self, job: CollectorJob, snapshot: Snapshot) -> None:
        key = (job.collector, job.target)
        state = (snapshot.ok, snapshot.error)
        previous = self._last_state.get(key)
        self._last_state[key] = state
        if previous == state:
            return
        if snapshot.ok:
            if previous is not None:
                log.info("collector recovered", collector=job.collector, target=job.target)
        else:
            log.warning(
                "collector failed",
                collector=job.collector,
                target=job.target,
                error=snapshot.error,
            )

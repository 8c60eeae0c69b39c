"""Schedule collector jobs on APScheduler 3's AsyncIOScheduler.

Each job runs on its own interval with a little jitter, at most one instance at a
time, coalescing missed runs. Shutdown drains: APScheduler 3 would cancel running
coroutine jobs on ``shutdown()``, so running tasks are tracked here and given a
deadline to finish before they are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.kernel.runner import JobRunner
from monitor.kernel.source import CollectorJob

log = structlog.get_logger("monitor.scheduler")


def jitter_for(interval: float) -> float:
    """Spread start times by up to 10% of the interval (at most 5 s)."""
    return min(interval * 0.1, 5.0)


class CollectorScheduler:
    def __init__(
        self,
        runner: JobRunner,
        jobs: Sequence[CollectorJob],
        *,
        after_run: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._runner = runner
        self._jobs = list(jobs)
        self._after_run = after_run
        self._tasks: set[asyncio.Task[None]] = set()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self.running = False

    def start(self) -> None:
        now = datetime.now(UTC)
        for i, job in enumerate(self._jobs):
            # first runs are spread over the first second rather than all at once (over
            # the whole interval for jobs that ask, such as many custom queries)
            spread = job.interval if job.spread_start else 1.0
            first = now + timedelta(seconds=random.uniform(0, spread))
            self._scheduler.add_job(
                self._run,
                IntervalTrigger(seconds=job.interval, jitter=jitter_for(job.interval)),
                args=[job],
                id=f"{job.collector}:{job.target}:{i}",
                name=f"{job.collector}/{job.target}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(job.interval / 2)),
                next_run_time=first,
            )
        self._scheduler.start()
        self.running = True
        log.info("scheduler started", jobs=len(self._jobs))

    async def _run(self, job: CollectorJob) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._runner.run(job)
            if self._after_run is not None:
                await self._after_run()
        finally:
            self._tasks.discard(task)

    async def stop(self, deadline: float) -> None:
        """Stop scheduling, let running jobs finish within ``deadline`` s, cancel the rest."""
        if not self.running:
            return
        self.running = False
        self._scheduler.pause()
        pending = set(self._tasks)
        if pending:
            log.info("waiting for running jobs", count=len(pending), deadline=deadline)
            _, still = await asyncio.wait(pending, timeout=deadline)
            for task in still:
                task.cancel()
            if still:
                log.warning("cancelled jobs at shutdown deadline", count=len(still))
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait(still, timeout=1.0)
        self._scheduler.shutdown(wait=False)

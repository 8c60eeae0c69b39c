"""The latest snapshot of every collector job, and each job's health.

The store is the only state shared by the scheduler (writer), the exposition and the
rule evaluator (readers). Everything runs on one asyncio loop, so no locking is needed;
readers get immutable snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from monitor.kernel.snapshot import Sample, Snapshot

JobKey = tuple[str, str]
"""(collector, target)"""

STALE_INTERVALS = 3
"""A snapshot not refreshed for this many intervals drops out of the exposition."""


@dataclass(slots=True)
class JobStatus:
    """Health of one collector job, as the self-metrics show it."""

    collector: str
    target: str
    interval: float
    up: bool | None = None
    """None until the first run finished."""
    last_duration: float = 0.0
    last_success: float | None = None
    """Wall-clock time of the last successful run."""
    last_error: str | None = None
    runs: dict[str, int] = field(default_factory=lambda: {"success": 0, "error": 0, "timeout": 0})


class SnapshotStore:
    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        stale_intervals: float = STALE_INTERVALS,
    ) -> None:
        self._monotonic = monotonic
        self._stale_intervals = stale_intervals
        self._snapshots: dict[JobKey, Snapshot] = {}
        self._status: dict[JobKey, JobStatus] = {}
        self._listeners: list[Callable[[], None]] = []
        self.generation = 0
        """Incremented on every change; the exposition caches its output per generation."""

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def touch(self) -> None:
        self.generation += 1
        for listener in self._listeners:
            listener()

    def register(self, collector: str, target: str, interval: float) -> JobStatus:
        """Declare a job so its self-metrics exist before its first run."""
        status = self._status.get((collector, target))
        if status is None:
            status = self._status[(collector, target)] = JobStatus(collector, target, interval)
        return status

    def put(self, snapshot: Snapshot, outcome: str, interval: float) -> JobStatus:
        """Store a finished run; ``outcome`` is success, error or timeout."""
        key = (snapshot.collector, snapshot.target)
        stored = Snapshot(
            collector=snapshot.collector,
            target=snapshot.target,
            samples=snapshot.samples,
            ok=snapshot.ok,
            started_at=snapshot.started_at,
            duration=snapshot.duration,
            error=snapshot.error,
            monotonic=self._monotonic(),
        )
        self._snapshots[key] = stored
        status = self.register(snapshot.collector, snapshot.target, interval)
        status.interval = interval
        status.up = snapshot.ok
        status.last_duration = snapshot.duration
        status.last_error = snapshot.error
        status.runs[outcome] = status.runs.get(outcome, 0) + 1
        if snapshot.ok:
            status.last_success = snapshot.started_at + snapshot.duration
        self.touch()
        return status

    def is_stale(self, snapshot: Snapshot) -> bool:
        status = self._status.get((snapshot.collector, snapshot.target))
        interval = status.interval if status else 60.0
        return self._monotonic() - snapshot.monotonic > self._stale_intervals * interval

    def snapshots(self) -> list[Snapshot]:
        """Current snapshots; stale ones (a job that stopped reporting) are left out."""
        return [s for s in self._snapshots.values() if not self.is_stale(s)]

    def live_count(self) -> int:
        return sum(1 for s in self._snapshots.values() if not self.is_stale(s))

    def get(self, collector: str, target: str) -> Snapshot | None:
        snapshot = self._snapshots.get((collector, target))
        if snapshot is None or self.is_stale(snapshot):
            return None
        return snapshot

    def samples(self) -> Iterator[Sample]:
        for snapshot in self.snapshots():
            yield from snapshot.samples

    def statuses(self) -> list[JobStatus]:
        return list(self._status.values())

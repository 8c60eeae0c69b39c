"""What the rules read: the snapshot store's samples grouped by metric, and job health.

A :class:`SeriesView` is an immutable picture of one instant. Samples are grouped per
metric and per job without copying them; the grouping of a snapshot is cached for as
long as the store holds that same snapshot object, so a cycle only regroups the jobs
that ran since the last one.

Besides the collectors' samples, the view holds two self-metrics the rules can watch::

    monitor_collector_up{target="primary",collector="postgres"} 0   (from job statuses)
    monitor_receiver_up{target="monitor",receiver="team"} 0          (delivery health)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from alerts.instance import JobKey
from monitor.kernel.scheduler import jitter_for
from monitor.kernel.snapshot import Sample, Snapshot, gauge
from monitor.kernel.snapshot_store import SnapshotStore

COLLECTOR_UP = gauge(
    "monitor_collector_up", "1 if the collector's last run succeeded, else 0", "collector"
)
RECEIVER_UP = gauge(
    "monitor_receiver_up", "0 while the receiver is marked broken, else 1", "receiver"
)
SELF_TARGET = "monitor"


class JobState(Enum):
    HEALTHY = "healthy"
    FAILING = "failing"
    """Registered but down, not run yet, or stale: its series' absence means nothing."""
    GONE = "gone"
    """Not configured (any more): its series are gone for good."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """The samples of one metric from one snapshot (``job`` None: the daemon itself)."""

    job: JobKey | None
    ok: bool
    samples: Sequence[Sample]


@dataclass(frozen=True, slots=True)
class SeriesView:
    metrics: Mapping[str, Sequence[Chunk]]
    jobs: Mapping[JobKey, tuple[JobState, float]] = field(default_factory=dict)
    """Job state and collection interval."""

    def chunks(self, metric: str) -> Sequence[Chunk]:
        return self.metrics.get(metric, ())

    def samples(self, metric: str) -> Iterator[tuple[Chunk, Sample]]:
        for chunk in self.metrics.get(metric, ()):
            for sample in chunk.samples:
                yield chunk, sample

    def job_state(self, job: JobKey | None) -> JobState:
        if job is None:
            return JobState.HEALTHY
        entry = self.jobs.get(job)
        return JobState.GONE if entry is None else entry[0]

    def tolerance(self, job: JobKey | None) -> float:
        """Slack allowed on ``for`` durations: the scheduler's jitter for the job."""
        entry = self.jobs.get(job) if job is not None else None
        return jitter_for(entry[1]) if entry is not None else 0.0

    def series_count(self) -> int:
        return sum(len(c.samples) for chunks in self.metrics.values() for c in chunks)


def _group(snapshot: Snapshot) -> dict[str, list[Sample]]:
    grouped: dict[str, list[Sample]] = defaultdict(list)
    for sample in snapshot.samples:
        grouped[sample.spec.name].append(sample)
    return dict(grouped)


class ViewBuilder:
    """Builds a :class:`SeriesView` from the store, regrouping only changed snapshots."""

    def __init__(self) -> None:
        self._cache: dict[JobKey, tuple[Snapshot, dict[str, list[Sample]]]] = {}

    def build(self, store: SnapshotStore, receivers_up: Mapping[str, bool]) -> SeriesView:
        metrics: dict[str, list[Chunk]] = defaultdict(list)
        fresh: set[JobKey] = set()
        live: set[JobKey] = set()
        for snapshot in store.snapshots():
            key = (snapshot.collector, snapshot.target)
            live.add(key)
            cached = self._cache.get(key)
            if cached is None or cached[0] is not snapshot:
                cached = (snapshot, _group(snapshot))
                self._cache[key] = cached
            if snapshot.ok:
                fresh.add(key)
            for name, samples in cached[1].items():
                metrics[name].append(Chunk(key, snapshot.ok, samples))
        for key in set(self._cache) - live:
            del self._cache[key]
        jobs: dict[JobKey, tuple[JobState, float]] = {}
        self_samples: list[Sample] = []
        for status in store.statuses():
            key = (status.collector, status.target)
            healthy = status.up is True and key in fresh
            jobs[key] = (JobState.HEALTHY if healthy else JobState.FAILING, status.interval)
            if status.up is not None:
                self_samples.append(
                    COLLECTOR_UP(1 if status.up else 0, status.collector, target=status.target)
                )
        if self_samples:
            metrics[COLLECTOR_UP.name].append(Chunk(None, True, self_samples))
        receiver_samples = [
            RECEIVER_UP(1 if up else 0, name, target=SELF_TARGET)
            for name, up in sorted(receivers_up.items())
        ]
        if receiver_samples:
            metrics[RECEIVER_UP.name].append(Chunk(None, True, receiver_samples))
        return SeriesView(dict(metrics), jobs)


def view_of(
    samples: Mapping[JobKey | None, Sequence[Sample]],
    jobs: Mapping[JobKey, tuple[JobState, float]] | None = None,
    failed: frozenset[JobKey] = frozenset(),
) -> SeriesView:
    """A view from plain samples per job (tests and benchmarks)."""
    metrics: dict[str, list[Chunk]] = defaultdict(list)
    for job, job_samples in samples.items():
        grouped: dict[str, list[Sample]] = defaultdict(list)
        for sample in job_samples:
            grouped[sample.spec.name].append(sample)
        for name, group in grouped.items():
            metrics[name].append(Chunk(job, job not in failed, group))
    if jobs is None:
        jobs = {
            job: (JobState.FAILING if job in failed else JobState.HEALTHY, 15.0)
            for job in samples
            if job is not None
        }
    return SeriesView(dict(metrics), jobs)

"""Job runs: hard timeouts, failure samples, logs once per state change, drained shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from structlog.testing import capture_logs
from support import wait_for

from monitor.kernel.runner import JobRunner
from monitor.kernel.scheduler import CollectorScheduler
from monitor.kernel.snapshot import Sample, gauge
from monitor.kernel.snapshot_store import SnapshotStore
from monitor.kernel.source import CollectorJob

UP = gauge("fake_up", "up")


class FakeJob(CollectorJob):
    collector = "fake"

    def __init__(self, target: str = "t", *, interval: float = 1.0, timeout: float = 0.5) -> None:
        self.target = target
        self.interval = interval
        self.timeout = timeout
        self.behaviour = "ok"
        self.delay = 0.0
        self.runs = 0
        self.timeouts = 0
        self.finished = 0

    async def collect(self) -> Sequence[Sample]:
        self.runs += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.behaviour == "raise":
            raise ConnectionError("connection to postgres://u:hunter2@db/x refused")
        self.finished += 1
        return (UP(1, target=self.target),)

    def failure_samples(self) -> Sequence[Sample]:
        return (UP(0, target=self.target),)

    def on_timeout(self) -> None:
        self.timeouts += 1


async def test_success_error_timeout_outcomes() -> None:
    store = SnapshotStore()
    runner = JobRunner(store)
    job = FakeJob()
    ok = await runner.run(job)
    assert ok.ok and ok.values("fake_up") == {("t",): 1.0}

    job.behaviour = "raise"
    failed = await runner.run(job)
    assert not failed.ok
    assert failed.values("fake_up") == {("t",): 0.0}
    assert failed.error is not None and "hunter2" not in failed.error
    assert "ConnectionError" in failed.error

    job.behaviour, job.delay = "ok", 5.0
    timed_out = await runner.run(job)
    assert not timed_out.ok and timed_out.error == "timed out after 0.5s"
    assert timed_out.duration < 2.0
    assert job.timeouts == 1
    status = store.statuses()[0]
    assert status.runs == {"success": 1, "error": 1, "timeout": 1}
    assert status.up is False


async def test_failure_logged_once_per_state_change() -> None:
    runner = JobRunner(SnapshotStore())
    job = FakeJob()
    with capture_logs() as logs:
        job.behaviour = "raise"
        for _ in range(5):
            await runner.run(job)
        job.behaviour = "ok"
        for _ in range(3):
            await runner.run(job)
    events = [(e["event"], e["log_level"]) for e in logs]
    assert events == [("collector failed", "warning"), ("collector recovered", "info")]
    assert "hunter2" not in str(logs)


async def test_one_slow_job_does_not_delay_another() -> None:
    store = SnapshotStore()
    slow, fast = FakeJob("slow", interval=0.2, timeout=5), FakeJob("fast", interval=0.2)
    slow.delay = 3.0
    scheduler = CollectorScheduler(JobRunner(store), [slow, fast])
    scheduler.start()
    try:
        await wait_for(lambda: slow.runs == 1, timeout=3)
        before = fast.finished
        await wait_for(lambda: fast.finished >= before + 3, timeout=2.5)
        assert slow.finished == 0
        assert slow.runs == 1  # max one instance: no pile-up behind the slow run
    finally:
        await scheduler.stop(deadline=0.1)


async def test_stop_waits_for_running_jobs_then_cancels_at_deadline() -> None:
    store = SnapshotStore()
    quick = FakeJob("quick", interval=60, timeout=5)
    stuck = FakeJob("stuck", interval=60, timeout=30)
    quick.delay, stuck.delay = 0.3, 30.0
    scheduler = CollectorScheduler(JobRunner(store), [quick, stuck])
    scheduler.start()
    await wait_for(lambda: quick.runs == 1 and stuck.runs == 1, timeout=3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await scheduler.stop(deadline=1.0)
    elapsed = loop.time() - started
    assert quick.finished == 1  # allowed to finish
    assert stuck.finished == 0  # cancelled at the deadline
    assert 0.9 <= elapsed < 3.0
    assert not scheduler.running

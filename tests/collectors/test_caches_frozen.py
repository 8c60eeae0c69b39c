"""A server that stops answering mid-connection (SIGSTOP) is down within the job's
deadline, not a hang, and is read again once it resumes (SIGCONT)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_config
from servers import memcached_server, pgbouncer_server, redis_server
from support import wait_for_sync

from monitor.app.demo.testbed import TestBed
from monitor.app.demo.testservers import ServerProcess
from monitor.app.plugins import build_sources
from monitor.kernel.runner import JobRunner
from monitor.kernel.snapshot import value_of
from monitor.kernel.snapshot_store import SnapshotStore

pytestmark = pytest.mark.timeout(120)

HANG_BOUND = 5.0
"""Far above the 1 s deadline, far below psycopg's 10 s cancellation dance."""


def stopped(pid: int) -> bool:
    """True once every thread of the process is in state T (stopped) in /proc."""
    states = [
        stat.read_text().rsplit(")", 1)[1].split()[0]
        for stat in Path(f"/proc/{pid}/task").glob("*/stat")
    ]
    return bool(states) and all(state == "T" for state in states)


@contextlib.contextmanager
def frozen(*servers: ServerProcess) -> Iterator[None]:
    pids = [s.proc.pid for s in servers if s.proc is not None]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    # kill() returns before the signal has stopped every thread: a busy machine can let a
    # server answer one more request unless we wait for the kernel to say it stopped
    wait_for_sync(lambda: all(stopped(pid) for pid in pids), timeout=10)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


async def test_frozen_servers_are_down_within_the_deadline(pg_bed: TestBed) -> None:
    primary = pg_bed.primary
    with (
        redis_server() as redis,
        memcached_server() as memcached,
        pgbouncer_server(primary.host, primary.port) as bouncer,
    ):
        config = make_config(
            targets={
                "pgbouncer": [{"name": "pool", "url": bouncer.admin_url(), "timeout": "1s"}],
                "redis": [{"name": "cache", "url": redis.url, "timeout": "1s"}],
                "memcached": [{"name": "mc", "servers": memcached.address, "timeout": "1s"}],
            }
        )
        sources = build_sources(config)
        runner = JobRunner(SnapshotStore())
        jobs = [source.jobs()[0] for source in sources]
        try:
            for job in jobs:  # connected and mid-session when the servers freeze
                assert (await runner.run(job)).ok
            with frozen(redis, memcached, bouncer):
                down = await asyncio.wait_for(
                    asyncio.gather(*(runner.run(job) for job in jobs)), HANG_BOUND
                )
            for snapshot in down:
                assert not snapshot.ok and snapshot.error == "timed out after 1s"
                assert [s.value for s in snapshot.samples] == [0.0]
            up = await asyncio.gather(*(runner.run(job) for job in jobs))
            for snapshot in up:
                assert snapshot.ok, snapshot.error
            assert value_of(up[0].samples, "pgbouncer_up") == 1
        finally:
            for source in sources:
                await source.close()

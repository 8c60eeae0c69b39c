"""A large render does not hold the event loop: the store's samples are rendered in a
worker thread, so a periodic tick keeps firing on time while a scrape's body is built.

The same render done on the loop is measured in the same test as the reference: it
delays the tick by the whole render, which is what the off-loop render must avoid."""

from __future__ import annotations

import time

from support import wait_for

from monitor.kernel.exposition import Exposition
from monitor.kernel.loop_lag import LoopLagProbe
from monitor.kernel.snapshot import Snapshot, gauge
from monitor.kernel.snapshot_store import SnapshotStore

BIG = gauge("big_rows", "rows", "queryid", "datname")
JOBS, PER_JOB = 20, 5000


def collect(store: SnapshotStore, round_: int) -> None:
    """A fresh collection of every job: new Sample objects, so every line is rebuilt."""
    for job in range(JOBS):
        samples = tuple(
            BIG(i * round_, str(job * PER_JOB + i), "app", target=f"t{job}") for i in range(PER_JOB)
        )
        store.put(Snapshot("big", f"t{job}", samples, True, 1.7e9, 0.01), "success", 15.0)


async def test_loop_keeps_ticking_while_a_large_render_runs() -> None:
    store = SnapshotStore()
    exposition = Exposition(store)
    lags: list[float] = []
    probe = LoopLagProbe(0.001, lags.append)
    probe.start()
    try:

        async def ticked() -> int:
            """Waits for a tick after everything done so far; the count of ticks then."""
            count = len(lags)
            await wait_for(lambda: len(lags) > count + 1)
            return len(lags)

        # reference: the render on the loop delays the next tick by its whole duration
        collect(store, 1)
        before = await ticked()
        started = time.perf_counter()
        on_loop = exposition.render(openmetrics=True)
        on_loop_seconds = time.perf_counter() - started
        await wait_for(lambda: len(lags) > before)
        on_loop_lag = max(lags[before:])
        assert on_loop_lag >= 0.8 * on_loop_seconds
        # a fresh collection, rendered off the loop as a scrape does
        collect(store, 2)
        before = await ticked()
        off_loop = await exposition.render_async(openmetrics=True)
        during = lags[before:]
    finally:
        probe.stop()
    assert off_loop != on_loop and off_loop.count(b"\nbig_rows{") == JOBS * PER_JOB
    assert len(during) >= 3, "the loop did not run while the render was in progress"
    assert max(during) < on_loop_lag / 4, (max(during), on_loop_lag)

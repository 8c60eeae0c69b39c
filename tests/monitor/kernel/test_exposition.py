"""The store and its rendering: staleness, duplicates, counters, self-metrics."""

from __future__ import annotations

from support import metric, parse_exposition

from monitor.kernel.exposition import Exposition
from monitor.kernel.snapshot import Snapshot, counter, gauge, info
from monitor.kernel.snapshot_store import SnapshotStore

UP = gauge("x_up", "up")
HITS = counter("x_hits_total", "hits", "db")
QUERY = info("x_query_info", "query text", "queryid", "query")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def put(store: SnapshotStore, target: str, *samples: object, ok: bool = True) -> None:
    store.put(
        Snapshot("x", target, tuple(samples), ok, 1.7e9, 0.002),  # type: ignore[arg-type]
        "success" if ok else "error",
        10.0,
    )


def test_renders_kinds_and_self_metrics() -> None:
    store = SnapshotStore()
    put(
        store,
        "a",
        UP(1, target="a"),
        HITS(5, "app", target="a"),
        QUERY(1, "42", "SELECT $1", target="a"),
    )
    parsed = parse_exposition(Exposition(store).render().decode())
    assert metric(parsed, "x_up", target="a") == 1
    assert metric(parsed, "x_hits_total", target="a", db="app") == 5
    assert metric(parsed, "x_query_info", target="a", queryid="42", query="SELECT $1") == 1
    assert metric(parsed, "monitor_collector_up", collector="x", target="a") == 1
    assert (
        metric(parsed, "monitor_collector_runs_total", collector="x", target="a", status="success")
        == 1
    )
    assert (
        metric(
            parsed, "monitor_collector_last_success_timestamp_seconds", collector="x", target="a"
        )
        is not None
    )


def test_stale_snapshots_drop_out() -> None:
    clock = FakeClock()
    store = SnapshotStore(monotonic=clock)
    exposition = Exposition(store)
    put(store, "a", UP(1, target="a"))
    put(store, "b", UP(1, target="b"))
    clock.now += 25  # 2.5 intervals: still current
    put(store, "b", UP(1, target="b"))
    assert b'x_up{target="a"}' in exposition.render()
    clock.now += 10  # a: 3.5 intervals without news -> stale; b refreshed 10 s ago
    text = exposition.render().decode()
    assert 'x_up{target="a"}' not in text
    assert 'x_up{target="b"} 1.0' in text
    # the job's own health is still visible
    assert 'monitor_collector_up{collector="x",target="a"}' in text


def test_failure_replaces_values_instead_of_freezing_them() -> None:
    store = SnapshotStore()
    put(store, "a", UP(1, target="a"), HITS(5, "app", target="a"))
    put(store, "a", UP(0, target="a"), ok=False)
    text = Exposition(store).render().decode()
    assert 'x_up{target="a"} 0.0' in text
    assert "x_hits_total{" not in text
    assert 'monitor_collector_up{collector="x",target="a"} 0.0' in text


def test_duplicate_series_are_emitted_once() -> None:
    store = SnapshotStore()
    put(store, "a", HITS(1, "app", target="a"), HITS(2, "app", target="a"))
    text = Exposition(store).render().decode()
    assert text.count('x_hits_total{db="app",target="a"}') == 1


def test_registered_job_without_run_has_no_up_sample() -> None:
    store = SnapshotStore()
    store.register("x", "a", 10)
    text = Exposition(store).render().decode()
    assert 'monitor_collector_up{collector="x"' not in text
    assert 'monitor_collector_runs_total{collector="x",status="success",target="a"} 0.0' in text

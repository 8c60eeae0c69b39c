"""The coordinator: evaluation results through decision, outbox and ledger, with a real
SQLite state database and log receivers (no network)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alert_fakes import Harness
from conftest import make_config

from alerts.notify.events import Event
from alerts.series import SeriesView
from alerts.statedb.records import QUEUED, SENT, SILENCED
from monitor.app.config import Config
from monitor.kernel.snapshot import gauge

VALUE = gauge("test_ratio", "a value no built-in rule watches")
JOB = ("postgres", "primary")
HOT = {"name": "Hot", "metric": VALUE.name, "op": ">", "threshold": 0.9, "for": "0s"}

Make = Callable[[Config], Harness]


def config(tmp_path: Path, **doc: Any) -> Config:
    doc.setdefault("rules", [HOT])
    doc.setdefault("receivers", {"a": {"type": "log"}, "b": {"type": "log"}})
    return make_config(state={"url": f"sqlite:///{tmp_path / 'state.db'}"}, **doc)


def view(h: Harness, *values: float) -> SeriesView:
    return h.view({JOB: [VALUE(v, target=f"t{i}") for i, v in enumerate(values)]})


def statuses(h: Harness) -> dict[str, str]:
    return {r: n.status for (_, r), n in h.engine.ledger.notifications.items()}


async def test_a_firing_alert_is_queued_for_each_routed_receiver(
    harness: Make, tmp_path: Path
) -> None:
    h = harness(config(tmp_path))
    await h.open()
    await h.evaluate(view(h, 0.95))
    assert sorted(r.receiver for r in h.engine.outbox.rows.values()) == ["a", "b"]
    assert statuses(h) == {"a": QUEUED, "b": QUEUED}
    event = Event.from_json(next(iter(h.engine.outbox.rows.values())).payload)
    assert (event.action, event.labels["alertname"], event.severity) == (
        "trigger",
        "Hot",
        "warning",
    )
    await h.evaluate(view(h, 0.96))  # still firing, still queued: nothing new
    assert len(h.engine.outbox) == 2
    stored = await h.db.load()
    assert len(stored.outbox) == 2 and len(stored.notifications) == 2


async def test_routes_pick_receivers(harness: Make, tmp_path: Path) -> None:
    h = harness(config(tmp_path, routes=[{"match": {"alertname": "Hot"}, "receivers": ["b"]}]))
    await h.open()
    await h.evaluate(view(h, 0.95))
    assert [r.receiver for r in h.engine.outbox.rows.values()] == ["b"]


async def test_repeat_after_the_interval_and_resolve_to_whoever_was_told(
    harness: Make, tmp_path: Path
) -> None:
    routes = [{"receivers": ["a"], "repeat_interval": "1h"}]
    h = harness(config(tmp_path, routes=routes))
    await h.open()
    await h.evaluate(view(h, 0.95))
    await h.deliver()
    assert statuses(h) == {"a": SENT} and len(h.engine.outbox) == 0
    h.clock.advance(1800)
    await h.evaluate(view(h, 0.95))
    assert len(h.engine.outbox) == 0  # repeat not due yet
    h.clock.advance(1800)
    await h.evaluate(view(h, 0.95))
    (row,) = h.engine.outbox.rows.values()
    assert Event.from_json(row.payload).repeat is True
    await h.deliver()
    await h.evaluate(view(h, 0.1))
    (resolve,) = h.engine.outbox.rows.values()
    assert (resolve.receiver, resolve.action) == ("a", "resolve")
    assert h.engine.ledger.notifications == {}


async def test_a_blip_inside_group_wait_is_never_sent(harness: Make, tmp_path: Path) -> None:
    h = harness(config(tmp_path, routes=[{"receivers": ["a"], "group_wait": "30s"}]))
    await h.open()
    await h.evaluate(view(h, 0.95))
    assert len(h.engine.outbox) == 1
    h.clock.advance(5)
    await h.evaluate(view(h, 0.1))
    assert len(h.engine.outbox) == 0  # trigger cancelled, no resolve
    assert h.engine.ledger.notifications == {}
    assert (await h.db.load()).outbox == []


async def test_silenced_then_notified_when_the_silence_ends(harness: Make, tmp_path: Path) -> None:
    silence = {
        "match": {"alertname": "Hot"},
        "start": "2020-01-01T00:00:00Z",
        "end": "2027-01-15T08:00:00Z",  # 1_800_000_000 on the wall clock
    }
    h = harness(config(tmp_path, silences=[silence]))
    h.clock.wall = 1_800_000_000.0 - 100
    await h.open()
    await h.evaluate(view(h, 0.95))
    assert len(h.engine.outbox) == 0
    assert statuses(h) == {"a": SILENCED, "b": SILENCED}
    h.clock.advance(200)
    await h.evaluate(view(h, 0.95))
    assert len(h.engine.outbox) == 2
    assert statuses(h) == {"a": QUEUED, "b": QUEUED}


async def test_a_follower_evaluates_but_does_not_dispatch(harness: Make, tmp_path: Path) -> None:
    h = harness(config(tmp_path))
    await h.open()
    h.engine.step_down()
    assert h.engine.leader is False
    await h.evaluate(view(h, 0.95))
    assert h.engine.state.instances and len(h.engine.outbox) == 0
    assert await h.engine.flush(h.clock()) is True
    assert (await h.db.load()).instances == []
    h.engine.lead_in_memory()
    await h.evaluate(view(h, 0.95))
    assert len(h.engine.outbox) == 2


async def test_enqueue_test_goes_through_the_outbox(harness: Make, tmp_path: Path) -> None:
    from alerts.service.oneshot import test_event

    h = harness(config(tmp_path))
    await h.open()
    h.engine.enqueue_test("a", test_event("trigger", "dk", "info", 1.0), h.clock())
    h.engine.enqueue_test("a", test_event("trigger", "dk", "info", 1.0), h.clock())
    assert len(h.engine.outbox) == 1
    await h.deliver()
    assert h.engine.counters.notifications == {("a", "success"): 1}

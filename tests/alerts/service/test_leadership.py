"""Leadership between two daemons sharing one SQLite state database (the lease table)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alert_fakes import Harness
from conftest import make_config

from alerts.service.leadership import Leadership
from alerts.statedb.records import QUEUED
from monitor.app.config import Config
from monitor.kernel.snapshot import gauge

VALUE = gauge("test_ratio", "a value no built-in rule watches")
HOT = {"name": "Hot", "metric": VALUE.name, "op": ">", "threshold": 0.9, "for": "0s"}

Make = Callable[[Config], Harness]


async def test_one_leads_the_other_follows_then_takes_over(harness: Make, tmp_path: Path) -> None:
    config = make_config(
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        rules=[HOT],
        receivers={"a": {"type": "log"}},
    )
    first, second = harness(config), harness(config)
    leads: list[str] = []
    one = Leadership(first.db, first.engine, retry=1.0, on_lead=lambda: leads.append("one"))
    two = Leadership(second.db, second.engine, retry=1.0, on_lead=lambda: leads.append("two"))
    await one.elect(first.clock())
    await two.elect(second.clock())
    assert (one.role, two.role) == ("leader", "follower")
    assert (first.engine.leader, second.engine.leader) == (True, False)

    await first.evaluate(first.view({("postgres", "p"): [VALUE(0.95, target="t")]}))
    assert len(first.engine.outbox) == 1
    await one.elect(first.clock())  # still the leader: nothing changes
    assert leads == ["one"]

    await one.release()
    await two.elect(second.clock())
    assert two.role == "leader" and leads == ["one", "two"]
    (record,) = second.engine.ledger.notifications.values()
    assert record.status == QUEUED  # the queued trigger was taken over, not re-decided
    assert len(second.engine.outbox) == 1


async def test_an_unreachable_database_degrades_to_delivering_from_memory(harness: Make) -> None:
    from support import free_port

    config = make_config(state={"url": f"postgresql://monitor:pw@127.0.0.1:{free_port()}/state"})
    h = harness(config)
    leadership = Leadership(h.db, h.engine, retry=1.0)
    await leadership.elect(h.clock())
    assert leadership.role == "degraded"
    assert h.engine.leader is True

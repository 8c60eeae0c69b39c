"""End to end on the test bed: a real replica paused with pg_wal_replay_pause() makes the
replica-lag rule page PagerDuty, and resuming replay resolves it."""

from __future__ import annotations

from alert_fakes import ROUTING_KEY, FakeReceiverServer
from conftest import make_config, run_daemon
from support import wait_for

from monitor.app.demo.testbed import TestBed

MiB = 1024 * 1024


async def test_paused_replica_pages_and_resolves(
    own_bed: TestBed, pagerduty: FakeReceiverServer
) -> None:
    assert own_bed.replica is not None
    config = make_config(
        interval="1s",
        targets={
            "postgres": [
                {
                    "name": "primary",
                    "url": own_bed.primary.dsn(),
                    "replication": {"interval": "1s"},
                    "statements": {"enabled": False},
                    "diagnose": {"enabled": False},
                    "vacuum": {"enabled": False},
                }
            ]
        },
        receivers={
            "oncall": {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": pagerduty.url}
        },
        routes=[{"match": {"severity": "critical"}, "receivers": ["oncall"]}],
        rules=[
            {"name": "PgReplicationLagBytes", "threshold": 4 * MiB, "clear": 1 * MiB, "for": "2s"}
        ],
    )
    async with run_daemon(config):
        TestBed.run_sql(own_bed.replica, "SELECT pg_wal_replay_pause()")
        TestBed.run_sql(
            own_bed.primary,
            "CREATE TABLE lag_filler AS "
            "SELECT g, repeat(md5(g::text), 32) AS pad FROM generate_series(1, 16000) g",
        )
        await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=30)
        trigger = pagerduty.bodies()[0]
        assert trigger["payload"]["class"] == "PgReplicationLagBytes"
        assert trigger["payload"]["severity"] == "critical"
        assert trigger["payload"]["source"] == "primary"
        details = trigger["payload"]["custom_details"]
        assert details["value"] > 4 * MiB
        assert details["labels"]["standby"]
        assert "behind" in trigger["payload"]["summary"]
        TestBed.run_sql(own_bed.replica, "SELECT pg_wal_replay_resume()")
        await wait_for(lambda: pagerduty.actions() == ["trigger", "resolve"], timeout=30)
        assert pagerduty.bodies()[1]["dedup_key"] == trigger["dedup_key"]

"""Three sharded daemons over 30 HTTP targets, alerting through a real Alertmanager.

Every target is watched by exactly one shard; a shard restarted mid-incident (with a
fresh state database, as a Heroku dyno restart gives it) re-sends its alerts without a
second page; a shard that stops for good is reported once, by the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from alert_fakes import FakeReceiverServer
from alertmanager_support import Instance, alertmanager_cluster
from alertmanager_webhook_model import WebhookMessage
from conftest import RunningDaemon, make_config
from support import parse_exposition, wait_for

from alerts.instance import State
from alerts.service.component import AlertingComponent
from monitor.app.config import Config
from monitor.app.daemon import Daemon
from monitor.app.plugins import build_sources
from monitor.kernel.sharding import Shard

TARGETS = 30
RESEND = 2.0


def shard_config(tmp_path: Path, site: str, am: str, index: int, run: int) -> Config:
    return make_config(
        interval="1s",
        targets={
            "http": [
                {"name": f"t{i:02d}", "url": f"{site}{i}", "timeout": "1s", "slo": None}
                for i in range(TARGETS)
            ]
        },
        receivers={"am": {"type": "alertmanager", "urls": [am], "resend_interval": "2s"}},
        rules=[
            {"name": "ProbeFailed", "for": "0s"},
            {"name": "MonitorShardDown", "for": "2s"},
        ],
        state={"url": f"sqlite:///{tmp_path / f'shard{index}-{run}.db'}"},
    )


@contextlib.asynccontextmanager
async def shard(
    tmp_path: Path, site: str, am: str, index: int, run: int = 0
) -> AsyncIterator[RunningDaemon]:
    config = shard_config(tmp_path, site, am, index, run)
    sources = build_sources(config, Shard(index, 3))
    daemon = Daemon(config, sources=sources)
    async with _running(daemon) as running:
        yield running


@contextlib.asynccontextmanager
async def _running(daemon: Daemon) -> AsyncIterator[RunningDaemon]:
    task = asyncio.create_task(daemon.run())
    await wait_for(lambda: daemon.bound_port is not None or task.done(), timeout=10)
    running = RunningDaemon(daemon, task)
    try:
        yield running
    finally:
        if not task.done():
            await running.stop()


async def owned_targets(daemon: RunningDaemon) -> tuple[set[str], dict[str, str]]:
    async def exported() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        metrics = parse_exposition((await daemon.get("/metrics")).text)
        return metrics if any(k[0] == "monitor_shard_info" for k in metrics) else None

    metrics = await wait_for(exported, timeout=10)
    owned = {dict(k[1])["name"] for k in metrics if k[0] == "monitor_shard_target_info"}
    (info,) = [dict(k[1]) for k in metrics if k[0] == "monitor_shard_info"]
    return owned, info


def probe_failed(hook: FakeReceiverServer) -> list[WebhookMessage]:
    out = [WebhookMessage.model_validate(b) for b in hook.bodies()]
    return [m for m in out if m.groupLabels.get("alertname") == "ProbeFailed"]


def shard_down(hook: FakeReceiverServer) -> list[WebhookMessage]:
    out = [WebhookMessage.model_validate(b) for b in hook.bodies()]
    return [m for m in out if m.groupLabels.get("alertname") == "MonitorShardDown"]


def shard_down_reporters(daemons: dict[int, RunningDaemon]) -> list[int]:
    """The live shards whose engine has MonitorShardDown firing."""
    out = []
    for index, running in daemons.items():
        (alerting,) = [c for c in running.daemon.components if isinstance(c, AlertingComponent)]
        firing = [i for i in alerting.engine.state.instances.values() if i.state is State.FIRING]
        if index != 3 and any(i.rule == "MonitorShardDown" for i in firing):
            out.append(index)
    return out


def firing_targets(am: Instance) -> dict[str, Any]:
    return {
        a["labels"]["target"]: a  # type: ignore[index]
        for a in am.alerts(filter='alertname="ProbeFailed"')
    }


async def test_three_shards_cover_every_target_once_and_page_once(
    tmp_path: Path, webhook: FakeReceiverServer, site: FakeReceiverServer
) -> None:
    site.site_status = 500  # every target fails its probe: one incident per target
    with alertmanager_cluster(tmp_path, webhook.url) as (am,):
        async with contextlib.AsyncExitStack() as stack:
            daemons = {
                i: await stack.enter_async_context(shard(tmp_path, site.url, am.url, i))
                for i in (1, 2, 3)
            }
            views = {i: await owned_targets(d) for i, d in daemons.items()}
            assert [views[i][1] for i in (1, 2, 3)] == [
                {"target": "monitor", "index": str(i), "total": "3"} for i in (1, 2, 3)
            ]
            owned = [views[i][0] for i in (1, 2, 3)]
            assert set().union(*owned) == {f"t{i:02d}" for i in range(TARGETS)}
            assert sum(len(o) for o in owned) == TARGETS  # exactly once

            await wait_for(lambda: len(firing_targets(am)) == TARGETS, timeout=30)
            await wait_for(
                lambda: any(len(m.alerts) == TARGETS for m in probe_failed(webhook)), timeout=20
            )
            pages = len(probe_failed(webhook))

            # restart shard 2 with a fresh state database, mid-incident
            restarted = time.time()
            await daemons[2].stop()
            daemons[2] = await stack.enter_async_context(
                shard(tmp_path, site.url, am.url, 2, run=1)
            )

            def resent() -> bool:
                alerts = firing_targets(am)
                return all(_time(alerts[t]["updatedAt"]) > restarted for t in owned[1])

            await wait_for(resent, timeout=20)
            # a marker alert joins the group: its notification comes after any page the
            # restart could have caused
            _post(am, {"alertname": "ProbeFailed", "severity": "critical", "target": "marker"})
            await wait_for(
                lambda: any(len(m.alerts) == TARGETS + 1 for m in probe_failed(webhook)),
                timeout=20,
            )
            assert len(probe_failed(webhook)) == pages + 1
            assert all(m.status == "firing" for m in probe_failed(webhook))
            assert all(a.status == "firing" for m in probe_failed(webhook) for a in m.alerts)
            assert shard_down(webhook) == []

            # shard 3 dies: the others report it, Alertmanager pages once
            await daemons[3].stop()
            await wait_for(lambda: shard_down(webhook), timeout=30)
            await wait_for(lambda: len(shard_down_reporters(daemons)) == 2, timeout=10)
            _post(am, {"alertname": "MonitorShardDown", "severity": "critical", "shard": "x"})
            await wait_for(lambda: len(shard_down(webhook)) >= 2, timeout=20)
            down, marker = shard_down(webhook)
            assert len(marker.alerts) == 2  # both shards kept re-sending: still one alert
        assert [a.labels for a in down.alerts] == [
            {
                "alertname": "MonitorShardDown",
                "severity": "critical",
                "shard": "3",
                "target": "monitor",
            }
        ]


def _time(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def _post(am: Instance, labels: dict[str, str]) -> None:
    answer = httpx.post(f"{am.url}/api/v2/alerts", json=[{"labels": labels}], timeout=5)
    assert answer.status_code == 200


async def test_monitor_check_reports_the_shard_and_its_heartbeats(
    tmp_path: Path, webhook: FakeReceiverServer
) -> None:
    from monitor.app.shards import ShardSource

    with alertmanager_cluster(tmp_path, webhook.url) as (am,):
        config = shard_config(tmp_path, "http://127.0.0.1:9/", am.url, 1, 0)
        (own,) = [s for s in build_sources(config, Shard(1, 3)) if isinstance(s, ShardSource)]
        result = await own.check()
        (heartbeat,) = am.alerts(filter='alertname="MonitorShardHeartbeat"')
        await own.close()
    assert result.ok and result.detail.startswith(f"shard 1/3: {len(own.job.owned)} targets")
    assert result.detail.endswith("heartbeats seen from [1]")
    assert heartbeat["labels"] == {
        "alertname": "MonitorShardHeartbeat",
        "monitor_shard": "1",
        "monitor_shard_total": "3",
    }
    lonely = ShardSource(Shard(2, 3), [], [], 15.0)
    alone = await lonely.check()
    assert alone.ok and alone.warnings == (
        "no alertmanager receiver: a dead shard's targets go unreported",
    )
    unreachable = ShardSource(Shard(2, 3), [], ["http://127.0.0.1:9"], 15.0)
    down = await unreachable.check()
    await unreachable.close()
    assert not down.ok and "no Alertmanager answered" in down.detail

"""The Heroku walkthrough's web + worker pair (deploy/heroku/README.md, "Which shape"):
two real daemons (``python -m monitor run``) with the same configuration, as config vars
are shared by an app's dynos, on one PostgreSQL state database.

What the walkthrough says, checked here:

* exactly one daemon is the alerting leader, and only it posts to Slack: an alert both
  daemons see arrives once;
* the log drain reaches the web dyno only; a worker dyno does not run the drain (its
  ``POST /logs`` says why), so it cannot raise a false ``HerokuDrainSilent``;
* the drain's Heroku* alerts page while the web dyno leads;
* when the web dyno stops, the worker takes over with the stored state: what was already
  sent is not sent again, and the drain's alerts resolve (the worker has no drain data),
  which is why the walkthrough recommends the web shape alone when a drain is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alert_fakes import FakeReceiverServer
from heroku_drain_support import body, headers
from prometheus_support import DaemonProcess, monitor_process
from support import wait_for

from collectors.heroku_logs.component import WORKER_TEXT
from monitor.app.demo.testbed import TestBed

TOKEN = "pair-Metrics-token-5"
DRAIN_PW = "pair-Drain-pw-8"
APP = "shop-production"
SHARED = "PairPostgresWatched"
MEMORY = "HerokuDynoMemoryHigh"


@pytest.fixture
def state_url(pg_bed: TestBed) -> Iterator[str]:
    """A fresh database: the state store of both daemons, and the target they watch."""
    name = f"pair_state_{uuid.uuid4().hex[:8]}"
    TestBed.run_sql(pg_bed.primary, f"CREATE DATABASE {name}")
    yield pg_bed.primary.dsn(name)
    TestBed.run_sql(pg_bed.primary, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
async def slack() -> AsyncIterator[FakeReceiverServer]:
    server = FakeReceiverServer("slack")
    await server.start()
    yield server
    await server.stop()


def shared_config(state_url: str, slack_url: str) -> dict[str, Any]:
    return {
        "interval": "1s",
        "state": {"url": state_url, "lock_retry": "1s"},
        "targets": {"postgres": [{"name": "primary", "url": state_url}]},
        "http": {"auth_token": TOKEN},
        "log_drain": {"password": DRAIN_PW, "min_requests": 1},
        "receivers": {"slack": {"type": "slack", "webhook_url": slack_url}},
        "routes": [
            {"match": {"severity": "critical"}, "receivers": ["slack"]},
            {"match": {"severity": "warning"}, "receivers": ["slack"]},
        ],
        "rules": [
            {
                "name": SHARED,
                "metric": "pg_up",
                "op": ">=",
                "threshold": 0,
                "severity": "warning",
                "summary": "pair test: {{ target }} is watched by both dynos",
            }
        ],
    }


class Pair:
    def __init__(self, tmp: Path, config: dict[str, Any]) -> None:
        self.tmp = tmp
        self.config = config
        self.stack = contextlib.ExitStack()

    async def start(self, dyno: str) -> DaemonProcess:
        name = dyno.replace(".", "-")
        process = monitor_process(
            self.tmp, env={"DYNO": dyno}, config=self.config, token=TOKEN, name=name
        )
        return await asyncio.to_thread(self.stack.enter_context, process)

    async def close(self) -> None:
        await asyncio.to_thread(self.stack.close)


async def alerts(daemon: DaemonProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"http://127.0.0.1:{daemon.port}/alerts",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def firing(daemon: DaemonProcess, rule: str) -> int:
    return sum(
        1 for a in (await alerts(daemon))["alerts"] if a["rule"] == rule and a["state"] == "firing"
    )


async def leader(daemon: DaemonProcess) -> bool:
    return bool((await alerts(daemon))["leader"])


async def sent(daemon: DaemonProcess) -> float:
    """Notifications this daemon delivered (``monitor_notifications_total``, any status)."""
    metrics = await asyncio.to_thread(daemon.metrics)
    return sum(v for (name, _), v in metrics.items() if name == "monitor_notifications_total")


def messages(slack: FakeReceiverServer) -> Counter[str]:
    """Slack messages by their text (``[FIRING:1] Rule: summary``)."""
    return Counter(str(b["text"]) for b in slack.bodies())


def about(slack: FakeReceiverServer, state: str, rule: str) -> int:
    """Alerts of ``rule`` in ``state`` over every Slack message (one message may group
    several: ``[FIRING:2] Rule``)."""
    total = 0
    for text in messages(slack).elements():
        m = re.match(r"\[([A-Z0-9:, ]+)\] ([\w, ]+)", text)
        assert m, text
        rules = m[2].split(", ")
        counts = dict(part.split(":") for part in m[1].split(", "))
        if rule in rules:
            assert len(rules) == 1, text  # the test's alerts are sent rule by rule
            total += int(counts.get(state, 0))
    return total


async def test_web_and_worker_on_one_state_database(
    tmp_path: Path, state_url: str, slack: FakeReceiverServer
) -> None:
    pair = Pair(tmp_path, shared_config(state_url, slack.url))
    try:
        web = await pair.start("web.1")
        await wait_for(lambda: leader(web), timeout=20)
        worker = await pair.start("worker.1")

        # both evaluate the shared rule; the worker stands by
        await wait_for(lambda: firing(worker, SHARED), timeout=30)
        await wait_for(lambda: firing(web, SHARED), timeout=30)
        assert (await alerts(worker))["role"] == "follower"
        assert not await leader(worker)
        await wait_for(lambda: about(slack, "FIRING", SHARED), timeout=30)

        # the drain reaches the web dyno only: runtime metrics with R14 and R15
        async with httpx.AsyncClient(timeout=10) as client:
            for daemon, expected in ((web, 204), (worker, 403)):
                response = await client.post(
                    f"http://127.0.0.1:{daemon.port}/logs/{APP}",
                    content=body("02"),
                    headers=headers("02"),
                    auth=("drain", DRAIN_PW),
                )
                assert response.status_code == expected, response.text
                if expected == 403:
                    assert response.text == WORKER_TEXT
        await wait_for(lambda: firing(web, MEMORY), timeout=30)
        memory_alerts = await firing(web, MEMORY)
        assert memory_alerts >= 2  # web.2 R14, worker.1 R15 of the watched app
        assert await firing(worker, MEMORY) == 0  # no drain data on the worker
        await wait_for(lambda: about(slack, "FIRING", MEMORY) >= memory_alerts, timeout=30)

        # once each, and only from the leader (the shared one was sent before the drain's)
        assert about(slack, "FIRING", SHARED) == 1
        assert about(slack, "FIRING", MEMORY) == memory_alerts
        assert all(n == 1 for n in messages(slack).values()), messages(slack)
        assert await sent(web) >= 1 + memory_alerts
        assert await sent(worker) == 0
        assert "log drain not run on this worker dyno" in worker.output()
        assert "log drain not run" not in web.output()

        # the web dyno stops (a restart, a scale-down): the worker takes over
        assert web.stop() == 0
        await wait_for(lambda: leader(worker), timeout=30)
        # without drain data the drain's alerts resolve on the worker: the gap the
        # walkthrough documents (with a drain, run the web shape alone)
        await wait_for(lambda: about(slack, "RESOLVED", MEMORY) >= memory_alerts, timeout=30)
        # what was already sent is not sent again by the new leader
        assert about(slack, "FIRING", SHARED) == 1
        assert about(slack, "FIRING", MEMORY) == memory_alerts
        assert about(slack, "RESOLVED", MEMORY) == memory_alerts
        assert await firing(worker, SHARED) == 1
        assert await sent(worker) >= memory_alerts
    finally:
        await pair.close()

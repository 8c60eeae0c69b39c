"""The daemon killed (SIGKILL) while a notification is in flight, then restarted.

The daemon runs as a subprocess (``python -m monitor run``), watching a local page with
an HTTP probe and paging a local PagerDuty that holds the request open; it is killed
before it can record the outcome.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from alert_fakes import ROUTING_KEY, Answer, FakeReceiverServer
from support import free_port, wait_for


class DaemonProcess:
    def __init__(self, config_file: Path, port: int, log: Path) -> None:
        self.config_file = config_file
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "-c", str(self.config_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    async def ready(self) -> None:
        async def healthy() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                async with httpx.AsyncClient() as client:
                    r = await client.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return r.status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(healthy, timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[list[DaemonProcess]]:
    made: list[DaemonProcess] = []
    yield made
    for d in made:
        d.stop()


async def started(daemon: DaemonProcess, made: list[DaemonProcess]) -> DaemonProcess:
    made.append(daemon)
    daemon.start()
    await daemon.ready()
    return daemon


def write_config(
    tmp_path: Path, site: FakeReceiverServer, pagerduty: FakeReceiverServer
) -> tuple[Path, int]:
    port = free_port()
    doc = {
        "interval": "1s",
        "http": {"listen": f"127.0.0.1:{port}"},
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}", "lock_retry": "1s"},
        "targets": {"http": [{"name": "site", "url": site.url, "interval": "1s", "timeout": "1s"}]},
        "receivers": {
            "oncall": {
                "type": "pagerduty",
                "routing_key": ROUTING_KEY,
                "url": pagerduty.url,
                "timeout": "60s",
            }
        },
        "routes": [{"match": {"severity": "critical"}, "receivers": ["oncall"]}],
        "rules": [{"name": "ProbeFailed", "for": "1s"}],
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, port


async def test_killed_while_the_resolve_is_in_flight(
    tmp_path: Path,
    site: FakeReceiverServer,
    pagerduty: FakeReceiverServer,
    daemon_factory: list[DaemonProcess],
) -> None:
    config, port = write_config(tmp_path, site, pagerduty)
    first = await started(DaemonProcess(config, port, tmp_path / "first.log"), daemon_factory)
    site.site_status = 503
    await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=20)
    pagerduty.then(Answer(hold=True))
    site.site_status = 200
    await wait_for(lambda: pagerduty.holding == 1, timeout=20)
    assert pagerduty.actions() == ["trigger", "resolve"]
    first.kill()  # between sending the resolve and recording its outcome
    await started(DaemonProcess(config, port, tmp_path / "second.log"), daemon_factory)
    await wait_for(lambda: len(pagerduty.requests) >= 3, timeout=20)
    # give the restarted daemon several evaluation cycles to misbehave
    await wait_for(lambda: b"alert" in (tmp_path / "second.log").read_bytes(), timeout=10)
    async with httpx.AsyncClient() as client:

        async def settled() -> bool:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            return "monitor_outbox_pending 0.0" in text and 'status="success"} 1.0' in text

        await wait_for(settled, timeout=20)
    assert pagerduty.actions() == ["trigger", "resolve", "resolve"]
    keys = {b["dedup_key"] for b in pagerduty.bodies()}
    assert len(keys) == 1
    log = (tmp_path / "second.log").read_text()
    assert "a delivery was interrupted before its outcome was recorded" in log
    assert ROUTING_KEY not in log + (tmp_path / "first.log").read_text()


async def test_killed_while_the_trigger_is_in_flight(
    tmp_path: Path,
    site: FakeReceiverServer,
    pagerduty: FakeReceiverServer,
    daemon_factory: list[DaemonProcess],
) -> None:
    """At-least-once: the trigger is sent again with the same dedup_key (one incident)."""
    config, port = write_config(tmp_path, site, pagerduty)
    first = await started(DaemonProcess(config, port, tmp_path / "first.log"), daemon_factory)
    pagerduty.then(Answer(hold=True))
    site.site_status = 503
    await wait_for(lambda: pagerduty.holding == 1, timeout=20)
    first.kill()
    await started(DaemonProcess(config, port, tmp_path / "second.log"), daemon_factory)
    await wait_for(lambda: pagerduty.actions() == ["trigger", "trigger"], timeout=20)
    site.site_status = 200
    await wait_for(lambda: pagerduty.actions() == ["trigger", "trigger", "resolve"], timeout=20)
    assert len({b["dedup_key"] for b in pagerduty.bodies()}) == 1

"""Fault injection around real daemons: subprocesses to freeze and kill, a TCP proxy to
cut one daemon off from its state database, and the configuration they run with."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from alert_fakes import ROUTING_KEY, FakeReceiverServer
from support import free_port, wait_for

LEASE = 3.0
"""The short lease the suite runs with (seconds); renewed every second."""
RETRY = 1.0


class DaemonProcess:
    """``python -m monitor run`` as a subprocess, logging JSON to a file."""

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

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(f"http://127.0.0.1:{self.port}{path}", timeout=2)

    async def ready(self) -> None:
        async def healthy() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                return (await self.get("/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(healthy, timeout=30)

    async def role(self) -> str:
        try:
            return str((await self.get("/alerts")).json()["role"])
        except (httpx.HTTPError, ValueError, KeyError):
            return "unanswered"

    async def firing(self) -> list[str]:
        alerts = (await self.get("/alerts")).json()["alerts"]
        return [a["labels"].get("target", "") for a in alerts if a["state"] == "firing"]

    async def wait_role(self, role: str, timeout: float = 30) -> float:
        """Seconds until the daemon reports ``role``."""
        started = time.monotonic()

        async def reached() -> bool:
            return await self.role() == role

        await wait_for(reached, timeout=timeout)
        return time.monotonic() - started

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


class TcpProxy:
    """Forwards 127.0.0.1:<port> to an upstream; :meth:`cut` drops every connection and
    refuses new ones (a network partition between one daemon and its state database)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.cut_off = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        self.cut_off = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.cut_off = False

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if self.cut_off:
                        break
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}


def write_config(
    path: Path,
    *,
    state_url: str,
    site: FakeReceiverServer,
    pagerduty: FakeReceiverServer | None = None,
    slack: FakeReceiverServer | None = None,
    targets: int = 1,
    route: dict[str, Any] | None = None,
    postgres: str | None = None,
) -> int:
    """A daemon configuration probing ``site`` (``ProbeFailed``, critical, for 1 s) and
    paging the given receivers; returns the daemon's HTTP port."""
    port = free_port()
    receivers: dict[str, Any] = {}
    if pagerduty is not None:
        receivers["oncall"] = {
            "type": "pagerduty",
            "routing_key": ROUTING_KEY,
            "url": pagerduty.url,
            "timeout": "60s",
        }
    if slack is not None:
        receivers["chat"] = {
            "type": "slack",
            "webhook_url": slack.url,
            "max_alerts": 40,
            "min_interval": "10ms",
            "timeout": "10s",
        }
    names = [f"site{i}" if targets > 1 else "site" for i in range(targets)]
    doc: dict[str, Any] = {
        "interval": "1s",
        "http": {"listen": f"127.0.0.1:{port}"},
        "state": {
            "url": state_url,
            "lock_retry": f"{RETRY}s",
            "lease": f"{LEASE}s",
            "lease_renew": "1s",
        },
        "targets": {
            "http": [
                {"name": name, "url": f"{site.url}{name}", "interval": "1s", "timeout": "1s"}
                for name in names
            ]
        },
        "receivers": receivers,
        "routes": [
            {"match": {"severity": "critical"}, "receivers": sorted(receivers), **(route or {})}
        ],
        "rules": [{"name": "ProbeFailed", "for": "1s"}],
    }
    if postgres is not None:
        doc["targets"]["postgres"] = [{"name": "primary", "url": postgres, "interval": "1s"}]
        doc["rules"].append({"name": "PgDown", "for": "2s"})
    path.write_text(yaml.safe_dump(doc))
    return port


def triggers_and_resolves(pagerduty: FakeReceiverServer) -> dict[str, list[str]]:
    """PagerDuty events accepted, per dedup key (one key: one incident)."""
    out: dict[str, list[str]] = {}
    for request in pagerduty.requests:
        body = request.json()
        out.setdefault(body["dedup_key"], []).append(body["event_action"])
    return out

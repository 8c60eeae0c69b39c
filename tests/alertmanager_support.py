"""Real Alertmanager processes for the tests (Debian's ``prometheus-alertmanager``).

:func:`alertmanager_cluster` starts one or more instances on loopback with a temporary
config and storage each; with two or more they gossip (``--cluster.listen-address``,
``--cluster.peer``) and deduplicate notifications through the shared notification log.
Every instance notifies one webhook (the test's stand-in, which counts what arrives),
with short ``group_wait``/``group_interval``/``resolve_timeout`` so a test takes seconds.
``MonitorShardHeartbeat`` alerts go to a receiver with no integrations, as the docs
recommend.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from support import free_port, require_binary, wait_for_sync

CONFIG = """\
global:
  resolve_timeout: {resolve_timeout}
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="MonitorShardHeartbeat"']
      receiver: blackhole
receivers:
  - name: hook
    webhook_configs:
      - url: {webhook}
        send_resolved: true
  - name: blackhole
"""


@dataclass
class Instance:
    binary: str
    directory: Path
    port: int
    cluster_port: int | None
    peers: list[int] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [
            self.binary,
            f"--config.file={self.directory / 'alertmanager.yml'}",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        if self.cluster_port is None:
            args.append("--cluster.listen-address=")
        else:
            args += [
                f"--cluster.listen-address=127.0.0.1:{self.cluster_port}",
                f"--cluster.advertise-address=127.0.0.1:{self.cluster_port}",
                "--cluster.peer-timeout=2s",
                "--cluster.gossip-interval=100ms",
                "--cluster.pushpull-interval=2s",
                "--cluster.settle-timeout=5s",
                *(f"--cluster.peer=127.0.0.1:{p}" for p in self.peers),
            ]
        log = (self.directory / "alertmanager.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        wait_for_sync(self.ready, timeout=30)

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"alertmanager exited: {self.log()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def cluster_size(self) -> int:
        status = httpx.get(f"{self.url}/api/v2/status", timeout=2).json()
        return len(status.get("cluster", {}).get("peers") or [])

    def alerts(self, **params: str) -> list[dict[str, object]]:
        answer: list[dict[str, object]] = httpx.get(
            f"{self.url}/api/v2/alerts", params=params, timeout=2
        ).json()
        return answer

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return (self.directory / "alertmanager.log").read_text(errors="replace")


@contextlib.contextmanager
def alertmanager_cluster(
    tmp: Path, webhook: str, *, size: int = 1, resolve_timeout: str = "30s"
) -> Iterator[list[Instance]]:
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    clustered = size > 1
    cluster_ports = [free_port() for _ in range(size)]
    instances: list[Instance] = []
    for i in range(size):
        directory = tmp / f"am{i}"
        (directory / "data").mkdir(parents=True)
        (directory / "alertmanager.yml").write_text(
            CONFIG.format(webhook=webhook, resolve_timeout=resolve_timeout)
        )
        instances.append(
            Instance(
                binary,
                directory,
                free_port(),
                cluster_ports[i] if clustered else None,
                [p for j, p in enumerate(cluster_ports) if j != i] if clustered else [],
            )
        )
    try:
        for instance in instances:
            instance.start()
        if clustered:
            wait_for_sync(lambda: all(i.cluster_size() == size for i in instances), timeout=30)
        yield instances
    finally:
        for instance in instances:
            instance.stop()

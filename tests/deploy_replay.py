"""Replays of router traffic around a release, through the real drain and deploy job.

Minute by minute on a fake clock: generated router lines (log-normal service times, a
share of 5xx) go through the log drain's ingestor, pg_stat_statements totals go into
the snapshot store, and the deploy job runs. The release arrives as Logplex
``Deploy``/``Release`` lines on the drain, like on Heroku.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from heroku_drain_support import component

from collectors.deploys.announce import Announcer
from collectors.deploys.config import DeploysConfig
from collectors.deploys.job import DeployJob
from collectors.deploys.markers import marker
from collectors.deploys.store import MemoryDeployStore
from collectors.heroku_logs.component import LogDrainComponent
from collectors.postgres.statements import CALLS, EXEC_SECONDS
from monitor.kernel.snapshot import Sample, Snapshot
from monitor.kernel.snapshot_store import SnapshotStore

APP = "shop"
T0 = 1_796_000_000.0
ROUTES = ("/checkout", "/products/:id", "/")
PATHS = {"/checkout": "/checkout", "/products/:id": "/products/42", "/": "/"}


@dataclass
class Traffic:
    """Per route: requests a minute, median service time, share of 5xx."""

    per_minute: int = 40
    median_ms: float = 80.0
    errors: float = 0.002


@dataclass
class Phase:
    routes: dict[str, Traffic] = field(default_factory=lambda: {r: Traffic() for r in ROUTES})
    query_ms: dict[str, float] = field(default_factory=lambda: {"101": 2.0, "202": 5.0})
    query_calls: int = 100


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


def frame(message: str) -> bytes:
    data = message.encode()
    return str(len(data)).encode() + b" " + data


def router_body(t: float, phase: Phase, rng: random.Random) -> bytes:
    frames = []
    for route, traffic in phase.routes.items():
        for i in range(traffic.per_minute):
            ms = max(1, round(rng.lognormvariate(math.log(traffic.median_ms), 0.5)))
            status = 500 if rng.random() < traffic.errors else 200
            frames.append(
                frame(
                    f"<158>1 {iso(t + i * 0.1)} host heroku router - at=info method=GET "
                    f'path="{PATHS[route]}" host=shop.example.com request_id=r{i} '
                    f'fwd="203.0.113.7" dyno=web.1 connect=1ms service={ms}ms '
                    f"status={status} bytes=512 protocol=https"
                )
            )
    return b"".join(frames)


def release_body(t: float, version: int, commit: str = "60a874b3") -> bytes:
    return frame(f"<133>1 {iso(t)} host app api - Deploy {commit} by user dev@example.com") + (
        frame(f"<133>1 {iso(t)} host app api - Release v{version} created by user dev@example.com")
    )


class Replay:
    def __init__(self, config: dict[str, Any] | None = None, seed: int = 7) -> None:
        self.config = DeploysConfig.model_validate(config or {})
        self.store = MemoryDeployStore()
        self.drain: LogDrainComponent = component(self.store, routes=list(ROUTES))
        self.snapshots = SnapshotStore()
        self.now = T0
        self.job = DeployJob(
            self.config,
            self.store,
            self.snapshots,
            self.drain.state,
            Announcer(()),
            15.0,
            clock=lambda: self.now,
        )
        self.rng = random.Random(seed)
        self.totals: dict[str, tuple[float, float]] = {}
        self.samples: list[list[Sample]] = []
        """What the job exported at each minute."""

    async def start(self) -> None:
        """Start the drain (its writer stores releases) with v123 deployed long ago."""
        await self.store.record(marker(APP, "v123", commit="1111111", at=T0 - 7200))
        await self.drain.start()

    async def stop(self) -> None:
        await self.drain.stop()

    def _queries(self, phase: Phase) -> None:
        out = []
        for queryid, ms in phase.query_ms.items():
            calls, seconds = self.totals.get(queryid, (0.0, 0.0))
            calls += phase.query_calls
            seconds += phase.query_calls * ms / 1000
            self.totals[queryid] = (calls, seconds)
            out.append(CALLS(calls, "shop", queryid, target="primary"))
            out.append(EXEC_SECONDS(seconds, "shop", queryid, target="primary"))
        snapshot = Snapshot("postgres_statements", "primary", tuple(out), True, self.now, 0.01)
        self.snapshots.put(snapshot, "ok", 60.0)

    async def minutes(
        self, n: int, phase: Phase, each: Callable[[list[Sample]], None] | None = None
    ) -> None:
        for _ in range(n):
            self.drain.ingestor.ingest(APP, router_body(self.now, phase, self.rng), self.now)
            self._queries(phase)
            self.now += 60.0
            samples = list(await self.job.collect())
            self.samples.append(samples)
            if each is not None:
                each(samples)

    async def release(self, version: int) -> None:
        self.drain.ingestor.ingest(APP, release_body(self.now, version), self.now)
        await self.drain.flush()

    async def run(
        self, before: Phase, after: Phase, *, version: int = 124, after_minutes: int = 40
    ) -> None:
        """40 minutes of ``before``, the release, ``after_minutes`` of ``after``."""
        await self.minutes(40, before)
        await self.release(version)
        await self.minutes(after_minutes, after)


def named(samples: list[Sample], name: str) -> list[dict[str, str]]:
    return [s.labels | {"value": str(s.value)} for s in samples if s.name == name]

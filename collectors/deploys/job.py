"""The periodic work of the deploys component, as a collector job.

Each run: take a history point (every ``step``), read the newest releases of each app
from the store (markers from every source land there), announce markers that are new,
advance the comparisons, store decided verdicts, and export::

    monitor_deploy_timestamp_seconds{target="deploys",app="shop",version="v124",
        commit="60a874b",kind="deploy"} 1.79e9
    monitor_release_verdict{target="deploys",app="shop",version="v124",verdict="regressed"} 1
    monitor_release_regression{target="deploys",app="shop",version="v124",signal="p95",
        route="/checkout",query="",process="",change="p95 /checkout 180 ms -> 420 ms",
        previous_version="v123",release_kind="deploy",released_at="1796047434"} 1

Timestamps and verdicts cover the newest ``keep_releases`` releases per app; regressions
only the app's newest release (a newer release, such as the rollback, resolves them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import structlog

from collectors.deploys.announce import Announcer
from collectors.deploys.config import DeploysConfig
from collectors.deploys.history import History, Point, drain_signals, store_signals
from collectors.deploys.store import DeployStore, StoredVerdict
from collectors.deploys.watch import PENDING, Comparison, ReleaseWatch
from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.release_log import ReleaseLogError
from collectors.heroku_logs.releases import ReleaseEvent
from monitor.kernel.snapshot import Sample, gauge
from monitor.kernel.snapshot_store import SnapshotStore
from monitor.kernel.source import CollectorJob

log = structlog.get_logger("collectors.deploys")

TARGET = "deploys"
STORE_TIMEOUT = 10.0
DEPLOY_TIMESTAMP = gauge(
    "monitor_deploy_timestamp_seconds",
    "When each recent release was created (Unix time; Grafana draws it as an annotation)",
    "app",
    "version",
    "commit",
    "kind",
)
VERDICT = gauge(
    "monitor_release_verdict",
    "1 for the verdict of a release's comparison: pass, regressed or insufficient",
    "app",
    "version",
    "verdict",
)
REGRESSION = gauge(
    "monitor_release_regression",
    "1 per signal that regressed with the app's newest release (ReleaseRegression)",
    "app",
    "version",
    "signal",
    "route",
    "query",
    "process",
    "change",
    "previous_version",
    "release_kind",
    "released_at",
)


class DeployJob(CollectorJob):
    collector = "deploys"

    def __init__(
        self,
        config: DeploysConfig,
        deploy_store: DeployStore,
        snapshots: SnapshotStore | None,
        drain: DrainState | None,
        announcer: Announcer,
        interval: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = TARGET
        self.interval = interval
        self.timeout = 30.0
        self.config = config
        self.store = deploy_store
        self._snapshots = snapshots
        self._drain = drain
        self._announcer = announcer
        self._clock = clock
        horizon = 2 * config.window + config.settle + 4 * config.step
        self.history = History(config.step, horizon)
        self.watch = ReleaseWatch(config, self.history)
        self.releases: dict[str, list[ReleaseEvent]] = {}
        self._adopted: set[str] = set()
        self._known: set[tuple[str, int]] | None = None
        """Markers already seen; None until the first read (nothing older is announced)."""

    def take_point(self, now: float) -> None:
        routes, h12, gauges = ({}, {}, {}) if self._drain is None else drain_signals(self._drain)
        queries, store_gauges = store_signals(
            () if self._snapshots is None else self._snapshots.samples()
        )
        gauges.update(store_gauges)
        self.history.add(Point(now, routes, h12, queries, gauges))

    async def _read_releases(self) -> None:
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                apps = await self.store.apps()
                fresh = {
                    app: await self.store.recent(app, self.config.keep_releases) for app in apps
                }
        except (ReleaseLogError, TimeoutError) as exc:
            log.warning("deploy store unavailable", error=str(exc) or "timeout")
            return
        seen = {(e.app, e.version) for events in fresh.values() for e in events}
        if self._known is not None:
            for events in fresh.values():
                for event in reversed(events):
                    if (event.app, event.version) not in self._known:
                        log.info(
                            "deploy marker",
                            app=event.app,
                            version=f"v{event.version}",
                            commit=event.commit,
                            kind=event.kind,
                        )
                        self._announcer.announce(event)
            seen |= self._known
        self._known = seen
        self.releases = fresh
        for app in sorted(fresh.keys() - self._adopted):
            await self._adopt(app)

    async def _adopt(self, app: str) -> None:
        """Once per app: the verdicts stored before a restart, so a regression keeps
        firing (and is not overwritten as "insufficient") after one."""
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                stored = await self.store.verdicts(app, self.config.keep_releases)
        except (ReleaseLogError, TimeoutError) as exc:
            log.warning("cannot read stored verdicts", app=app, error=str(exc) or "timeout")
            return
        self.watch.adopt(
            self.releases[app],
            {v.version: (v.verdict, v.decided_at, list(v.findings)) for v in stored},
        )
        self._adopted.add(app)

    async def _save(self, comparison: Comparison) -> None:
        release = comparison.release
        stored = StoredVerdict(
            release.app,
            release.version,
            comparison.verdict,
            comparison.decided_at or self._clock(),
            tuple(comparison.findings),
        )
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                await self.store.save_verdict(stored)
        except (ReleaseLogError, TimeoutError) as exc:
            log.warning("cannot store verdict", app=release.app, error=str(exc) or "timeout")

    async def collect(self) -> Sequence[Sample]:
        now = self._clock()
        if self.history.due(now):
            self.take_point(now)
        await self._read_releases()
        for app, events in sorted(self.releases.items()):
            for comparison in self.watch.evaluate(app, events, now):
                self._log(comparison)
                await self._save(comparison)
        return self.samples()

    @staticmethod
    def _log(comparison: Comparison) -> None:
        release = comparison.release
        log.info(
            "release compared",
            app=release.app,
            version=f"v{release.version}",
            verdict=comparison.verdict,
            regressions=[f.change() for f in comparison.regressions],
        )

    def samples(self) -> list[Sample]:
        out: list[Sample] = []
        t = TARGET
        for app, events in sorted(self.releases.items()):
            for event in events:
                version = f"v{event.version}"
                out.append(
                    DEPLOY_TIMESTAMP(
                        event.released_at, app, version, event.commit[:7], event.kind, target=t
                    )
                )
                comparison = self.watch.comparisons.get((app, event.version))
                if comparison is not None and comparison.verdict != PENDING:
                    out.append(VERDICT(1.0, app, version, comparison.verdict, target=t))
            if not events:
                continue
            newest = self.watch.comparisons.get((app, events[0].version))
            if newest is None:
                continue
            out.extend(regression_samples(newest))
        return out


def regression_samples(comparison: Comparison) -> list[Sample]:
    release = comparison.release
    previous = f"v{comparison.previous.version}" if comparison.previous else ""
    out = []
    for f in comparison.regressions:
        subject = {"route": "", "query": "", "process": ""}
        if f.subject_label:
            subject[f.subject_label] = f.subject
        out.append(
            REGRESSION(
                1.0,
                release.app,
                f"v{release.version}",
                f.signal,
                subject["route"],
                subject["query"],
                subject["process"],
                f.change(),
                previous,
                release.kind,
                str(int(release.released_at)),
                target=TARGET,
            )
        )
    return out

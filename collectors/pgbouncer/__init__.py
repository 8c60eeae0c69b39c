"""PgBouncer collector: one :class:`PgBouncerSource` per configured admin console.

Exposition (besides :mod:`collectors.pgbouncer.pools` and :mod:`.stats`)::

    pgbouncer_up{target="pool"} 1.0
    pgbouncer_version_info{target="pool",version="1.18.0"} 1.0
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors.pgbouncer.admin import AdminConsole, find_version
from collectors.pgbouncer.config import PgBouncerTarget
from collectors.pgbouncer.pools import (
    client_samples,
    database_samples,
    max_wait_seconds,
    number,
    pool_samples,
)
from collectors.pgbouncer.stats import StatsTracker
from monitor.kernel.redact import describe_error
from monitor.kernel.snapshot import Sample, gauge, info
from monitor.kernel.source import CheckResult, CollectorJob, Source
from monitor.kernel.timing import job_timeout

PGBOUNCER_UP = gauge("pgbouncer_up", "1 if the PgBouncer admin console answered, else 0")
PGBOUNCER_VERSION = info("pgbouncer_version_info", "PgBouncer version", "version")

COMMANDS = ("POOLS", "DATABASES", "STATS", "LISTS", "CONFIG", "VERSION")


class PgBouncerJob(CollectorJob):
    collector = "pgbouncer"

    def __init__(self, console: AdminConsole, target: str, interval: float, timeout: float):
        self._console = console
        self.target = target
        self.interval = interval
        self.timeout = timeout
        self._stats = StatsTracker()

    async def collect(self) -> Sequence[Sample]:
        shown = await self._console.show(*COMMANDS)
        target = self.target
        samples = [PGBOUNCER_UP(1, target=target)]
        version = find_version(shown["VERSION"], self._console.notices)
        if version:
            samples.append(PGBOUNCER_VERSION(1, version, target=target))
        samples.extend(pool_samples(target, shown["POOLS"], shown["DATABASES"]))
        samples.extend(database_samples(target, shown["DATABASES"]))
        samples.extend(client_samples(target, shown["LISTS"], shown["CONFIG"]))
        samples.extend(self._stats.samples(target, shown["STATS"]))
        return samples

    def failure_samples(self) -> Sequence[Sample]:
        return (PGBOUNCER_UP(0, target=self.target),)

    def on_timeout(self) -> None:
        self._console.discard()


class PgBouncerSource(Source):
    kind = "pgbouncer"

    def __init__(self, target: PgBouncerTarget, default_interval: float) -> None:
        self.name = target.name
        self.console = AdminConsole(target)
        self.interval = target.interval or default_interval
        self.timeout = target.timeout or job_timeout(self.interval)
        self._job = PgBouncerJob(self.console, self.name, self.interval, self.timeout)

    def jobs(self) -> Sequence[CollectorJob]:
        return [self._job]

    async def check(self) -> CheckResult:
        item = f"pgbouncer/{self.name}"
        try:
            shown = await self.console.show("VERSION", "POOLS")
        except Exception as exc:
            return CheckResult(item, False, describe_error(exc))
        version = find_version(shown["VERSION"], self.console.notices) or "(unknown version)"
        pools = [p for p in shown["POOLS"] if p.get("database") != "pgbouncer"]
        waiting = sum(number(p, "cl_waiting") for p in pools)
        worst = max((max_wait_seconds(p) for p in pools), default=0.0)
        detail = f"PgBouncer {version}, {len(pools)} pools, {waiting:g} clients waiting"
        if waiting:
            detail += f" (longest {worst:.2f}s)"
        return CheckResult(item, True, detail)

    async def close(self) -> None:
        await self.console.close()


def sources(targets: Sequence[PgBouncerTarget], interval: float) -> list[Source]:
    return [PgBouncerSource(t, interval) for t in targets]

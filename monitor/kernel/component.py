"""The interface of optional parts of the daemon that plug into its lifecycle
(alerting, beacons, push).

A component may add HTTP routes, register collectors on the private registry, add
collector jobs, run background work between ``start`` and ``stop``, react after each
collection, and report on itself in ``monitor check``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client.registry import Collector
from starlette.routing import BaseRoute

from monitor.kernel.exposition import Exposition
from monitor.kernel.http import HttpConfig
from monitor.kernel.snapshot_store import SnapshotStore
from monitor.kernel.source import CheckResult, CollectorJob


@dataclass(frozen=True, slots=True)
class Context:
    """What the daemon shares with every component (each also gets its own config section)."""

    store: SnapshotStore
    exposition: Exposition
    http: HttpConfig
    """The daemon's HTTP settings: routes a component adds use the same credentials."""
    interval: float
    """The default collection interval, for components whose own interval is unset."""


class Component:
    """Base class with do-nothing hooks; override what the component needs."""

    name = "component"

    def routes(self) -> Sequence[BaseRoute]:
        return ()

    def collectors(self) -> Sequence[Collector]:
        return ()

    def jobs(self) -> Sequence[CollectorJob]:
        """Periodic collections of the component's own data into the snapshot store,
        scheduled like the targets' jobs."""
        return ()

    async def start(self) -> None:
        """Begin background work; called once the scheduler runs."""

    async def after_collection(self) -> None:
        """Called after every collector run (e.g. to evaluate alert rules)."""

    async def stop(self) -> None:
        """Finish or persist in-flight work; called once at shutdown."""

    async def check(self) -> Sequence[CheckResult]:
        return ()


ComponentFactory = Callable[[Context], Sequence[Component]]

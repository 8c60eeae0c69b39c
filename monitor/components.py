"""Optional parts of the daemon that plug into its lifecycle (alerting, beacons, push).

A component may add HTTP routes, register collectors on the private registry, add
collector jobs, run background work between ``start`` and ``stop``, react after each
collection, and report on itself in ``monitor check``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client.registry import Collector
from starlette.routing import BaseRoute

from collectors.base import CheckResult, CollectorJob
from monitor.config import Config
from monitor.exposition import Exposition
from monitor.store import SnapshotStore


@dataclass(frozen=True, slots=True)
class Context:
    config: Config
    store: SnapshotStore
    exposition: Exposition


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


def component_factories() -> list[ComponentFactory]:
    """Every package that provides components adds its factory here.

    Imported lazily so that the config and collectors never depend on the components.
    """
    from alerts import component as alerting
    from collectors import rum
    from monitor import loop_lag, remote_write

    return [remote_write.components, alerting.components, rum.components, loop_lag.components]


def build_components(context: Context) -> list[Component]:
    out: list[Component] = []
    for factory in component_factories():
        out.extend(factory(context))
    return out

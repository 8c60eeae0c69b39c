"""The interface between the scheduler and the collectors.

A :class:`Source` is one configured target (a PostgreSQL server, a Redis, ...). It owns
its connections and offers one or more :class:`CollectorJob` objects, each with its own
interval and timeout, so an expensive check never delays the cheap ones. A job's
``collect()`` returns immutable samples; it never touches Prometheus or alerting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.kernel.snapshot import Sample


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of ``monitor check``: the item, whether it works, and what was seen."""

    item: str
    ok: bool
    detail: str
    warnings: tuple[str, ...] = ()


class CollectorJob(ABC):
    """One periodic collection for one target."""

    collector: str
    """Name of the collector, e.g. ``postgres`` or ``postgres_statements``."""
    target: str
    interval: float
    timeout: float
    spread_start: bool = False
    """Start at a random point of the first interval instead of within the first second:
    many similar jobs (custom queries) then do not all hit the server at once."""

    @abstractmethod
    async def collect(self) -> Sequence[Sample]:
        """Read the target once and return its samples. Raise on failure."""

    def failure_samples(self) -> Sequence[Sample]:
        """What to export when ``collect`` raised or timed out (e.g. ``pg_up 0``)."""
        return ()

    def on_timeout(self) -> None:  # noqa: B027 - optional hook
        """Called after ``collect`` was cancelled at its deadline (drop a stuck connection)."""


class Source(ABC):
    """A configured target with its connections and its jobs."""

    kind: str
    name: str

    @abstractmethod
    def jobs(self) -> Sequence[CollectorJob]:
        """The jobs to schedule for this target."""

    @abstractmethod
    async def check(self) -> CheckResult:
        """Try the target once for ``monitor check``; never raises."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once at shutdown."""

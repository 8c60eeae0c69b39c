"""The alerting section: what the alerting component is configured with, nothing more.

The root configuration keeps its top-level keys (``receivers``, ``routes``,
``silences``, ``rules``, ``state``); :meth:`AlertingConfig.of` gathers them, with the
two facts alerting needs from elsewhere: how many PostgreSQL targets there are (the
built-in ``PgStandbyMissing`` rule needs two) and the daemon's HTTP auth (applied to
``/alerts`` and ``/silences``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from alerts.receivers.config import ReceiverConfig
from alerts.routing import Route
from alerts.rules.config import RuleConfig
from alerts.silences import Silence
from alerts.statedb.config import StateConfig
from monitor.config.model import HttpConfig

if TYPE_CHECKING:
    from monitor.config.model import Config


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    receivers: Mapping[str, ReceiverConfig] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    silences: tuple[Silence, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    state: StateConfig = field(default_factory=StateConfig)
    postgres_targets: int = 0
    """PostgreSQL targets configured (the built-in pack expects a standby from two)."""
    http: HttpConfig = field(default_factory=HttpConfig)
    """The daemon's HTTP server settings: its auth guards ``/alerts`` and ``/silences``."""

    @classmethod
    def of(cls, config: Config) -> AlertingConfig:
        """The alerting section of the root configuration."""
        return cls(
            receivers=config.receivers,
            routes=config.routes,
            silences=config.silences,
            rules=config.rules,
            state=config.state,
            postgres_targets=len(config.targets.postgres),
            http=config.http,
        )

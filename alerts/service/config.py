"""The alerting section: what the alerting component is configured with, nothing more.

The root configuration keeps its top-level keys (``receivers``, ``routes``,
``silences``, ``rules``, ``state``); ``monitor/app/plugins.py`` gathers them, with the
two facts alerting needs from elsewhere: how many PostgreSQL targets there are (the
built-in ``PgStandbyMissing`` rule needs two) and the daemon's HTTP auth (applied to
``/alerts`` and ``/silences``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from alerts.receivers.config import ReceiverConfig
from alerts.routing import Route
from alerts.rules.config import RuleConfig
from alerts.runtime_silences import DEFAULT_MAX_SILENCE
from alerts.silences import Silence
from alerts.statedb.config import StateConfig
from monitor.kernel.http import HttpConfig


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    receivers: Mapping[str, ReceiverConfig] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    silences: tuple[Silence, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    state: StateConfig = field(default_factory=StateConfig)
    postgres_targets: int = 0
    """PostgreSQL targets configured (the built-in pack expects a standby from two)."""
    max_silence: float = DEFAULT_MAX_SILENCE
    """The longest runtime silence (``POST /silences``, ``monitor silence add``)."""
    http: HttpConfig = field(default_factory=HttpConfig)
    """The daemon's HTTP server settings: its auth guards ``/alerts`` and ``/silences``."""

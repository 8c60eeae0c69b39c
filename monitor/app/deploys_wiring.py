"""What the deploys plug-in needs from other sections: the drain's state, the
PagerDuty/Slack receivers named in ``deploys.notify``, and the ``heroku_rollback``
receiver that ``deploys.rollback`` stands for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from alerts.receivers.config import (
    HerokuRollbackConfig,
    PagerDutyConfig,
    ReceiverConfig,
    SlackConfig,
)
from alerts.routing import Route
from collectors.deploys.announce import ChangeTarget, change_url
from collectors.deploys.config import DeploysConfig
from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.component import LogDrainComponent
from monitor.app.config import Config
from monitor.kernel.component import Component
from monitor.kernel.sharding import resolve_shard

ROLLBACK_RECEIVER = "heroku_rollback"


def deploys_section(config: Config, environ: Mapping[str, str]) -> DeploysConfig | None:
    """``deploys``, on one shard only (the first) when the daemon is sharded: markers
    are announced and releases compared once."""
    if config.deploys is None:
        return None
    shard = resolve_shard(config.shard, environ)
    return config.deploys if not shard.sharded or shard.index == 1 else None


def change_targets(config: Config) -> tuple[ChangeTarget, ...]:
    out = []
    for name in config.deploys.notify if config.deploys else ():
        receiver = config.receivers[name]
        if isinstance(receiver, PagerDutyConfig):
            key = receiver.routing_key.get_secret_value()
            out.append(ChangeTarget(name, "pagerduty", change_url(receiver.url), key))
        elif isinstance(receiver, SlackConfig):
            out.append(ChangeTarget(name, "slack", receiver.webhook_url.get_secret_value()))
    return tuple(out)


def drain_state(components: Sequence[Component]) -> DrainState | None:
    for component in components:
        if isinstance(component, LogDrainComponent):
            return component.state
    return None


def default_app(config: Config) -> str | None:
    return config.log_drain.default_app if config.log_drain else None


def _rollback_name(config: Config) -> str | None:
    rollback = config.deploys.rollback if config.deploys else None
    if rollback is None or not rollback.enabled:
        return None
    name = ROLLBACK_RECEIVER
    while name in config.receivers:
        name = "_" + name
    return name


def routes_with_rollback(config: Config) -> tuple[Route, ...]:
    """``routes``, with ``ReleaseRegression`` also sent to the rollback receiver made by
    ``deploys.rollback`` (without routes, every receiver gets every alert anyway)."""
    name = _rollback_name(config)
    if name is None or not config.routes:
        return config.routes
    first = Route.model_validate(
        {"match": {"alertname": "ReleaseRegression"}, "receivers": [name], "continue": True}
    )
    return (first, *config.routes)


def receivers_with_rollback(config: Config) -> dict[str, ReceiverConfig]:
    """``receivers``, plus ``heroku_rollback`` when ``deploys.rollback.enabled``."""
    receivers = dict(config.receivers)
    rollback = config.deploys.rollback if config.deploys else None
    name = _rollback_name(config)
    if rollback is None or name is None:
        return receivers
    receivers[name] = HerokuRollbackConfig.model_validate(
        {
            "type": "heroku_rollback",
            "api_key": rollback.api_key,
            "dry_run": rollback.dry_run,
            "within": f"{rollback.within:g}s",
            "api_url": rollback.api_url,
        }
    )
    return receivers

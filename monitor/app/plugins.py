"""The one list of plug-ins: which collectors and components the daemon runs.

Each factory gets only its own section of the configuration (and the default
interval); nothing below this module knows the root configuration.
"""

from __future__ import annotations

import os

from alerts.service import component as alerting
from alerts.service.config import AlertingConfig
from collectors import (
    crux,
    http_probe,
    memcached,
    pgbouncer,
    postgres,
    psi,
    queries,
    redis_cache,
    rum,
)
from collectors.deploys import component as deploys
from collectors.heroku_logs import component as log_drain
from monitor.app import deploys_wiring
from monitor.app.config import Config
from monitor.app.shards import ShardSource
from monitor.kernel import loop_lag, remote_write
from monitor.kernel.component import Component, Context
from monitor.kernel.sharding import Shard, resolve_shard, select
from monitor.kernel.source import Source


def build_sources(config: Config, shard: Shard | None = None) -> list[Source]:
    """Every configured target, as sources for the scheduler; when sharded, only the
    targets this shard owns, and the shard's own source (``monitor_shard_*``)."""
    shard = shard or resolve_shard(config.shard, os.environ)
    if not shard.sharded:
        return _all_sources(config)
    owned = select(_all_sources(config), shard)
    return [*owned, ShardSource(shard, owned, alertmanager_urls(config), config.interval)]


def alertmanager_urls(config: Config) -> list[str]:
    return [url for r in config.receivers.values() if r.type == "alertmanager" for url in r.urls]


def _all_sources(config: Config) -> list[Source]:
    targets, interval = config.targets, config.interval
    return [
        *postgres.sources(targets.postgres, interval),
        *pgbouncer.sources(targets.pgbouncer, interval),
        *redis_cache.sources(targets.redis, interval),
        *memcached.sources(targets.memcached, interval),
        *crux.sources(targets.crux, interval),
        *psi.sources(targets.psi, interval),
        *http_probe.sources(targets.http, interval),
        *queries.sources(config.queries, targets.postgres, interval),
    ]


def build_components(config: Config, context: Context) -> list[Component]:
    """Every enabled component: push, alerting, browser beacons."""
    drain = log_drain.components(config.log_drain, config.state.url, context)
    return [
        *remote_write.components(config.remote_write, context),
        *alerting.components(alerting_section(config), context),
        *rum.components(config.targets.rum, context),
        *drain,
        *deploys.components(
            deploys_wiring.deploys_section(config, os.environ),
            config.state.url,
            context,
            deploys_wiring.drain_state(drain),
            deploys_wiring.change_targets(config),
            deploys_wiring.default_app(config),
        ),
        *loop_lag.components(context),
    ]


def alerting_section(config: Config) -> AlertingConfig:
    """The alerting section, gathered from the root's top-level keys (the SPEC's shape),
    with the two facts it needs from elsewhere."""
    return AlertingConfig(
        receivers=deploys_wiring.receivers_with_rollback(config),
        routes=deploys_wiring.routes_with_rollback(config),
        silences=config.silences,
        rules=config.rules,
        state=config.state,
        postgres_targets=len(config.targets.postgres),
        max_silence=config.max_silence,
        http=config.http,
    )

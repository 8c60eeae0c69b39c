"""Configuration from the environment alone, following Heroku's conventions.

=============================  ==================================================
variable                       becomes
=============================  ==================================================
DATABASE_URL                   postgres target ``primary``
HEROKU_POSTGRESQL_<COLOR>_URL  postgres target ``<color>`` (skipped when it is the
                               same database as DATABASE_URL)
PGBOUNCER_URL                  pgbouncer target ``pgbouncer``
REDIS_TLS_URL / REDIS_URL      redis target ``redis`` (the TLS URL wins)
MEMCACHIER_SERVERS (+ _USERNAME, _PASSWORD)   memcached target ``memcachier``
CRUX_API_KEY + MONITOR_ORIGINS CrUX field data for those origins
PSI_API_KEY + MONITOR_PSI_URLS PageSpeed Insights lab runs (the key defaults to
                               CRUX_API_KEY)
MONITOR_VITALS_ORIGINS         browser beacons on POST /vitals from these origins
  (+ MONITOR_VITALS_ROUTES)    (route patterns such as /products/:id)
MONITOR_PROBE_URLS             one HTTP probe per URL
SLACK_WEBHOOK_URL              receiver ``slack`` (warning and critical)
PAGERDUTY_ROUTING_KEY          receiver ``pagerduty`` (critical)
PORT / MONITOR_LISTEN          http.listen (``0.0.0.0:$PORT``; ``127.0.0.1:9187`` on a
                               Heroku dyno without $PORT, i.e. a worker)
METRICS_AUTH_TOKEN             bearer token for /metrics
MONITOR_PUBLIC_READ_ONLY=1     http.public_read_only (serve read-only endpoints without it)
REMOTE_WRITE_URL (+ _USERNAME, _PASSWORD, _BEARER_TOKEN, _INTERVAL,
  _MAX_QUEUE_SAMPLES)          remote_write push
MONITOR_STATE_URL              state store; on Heroku (``$DYNO`` set) it defaults to
                               DATABASE_URL, because a dyno's disk is wiped daily
                               (not when sharded: each shard keeps its own)
ALERTMANAGER_URLS              receiver ``alertmanager`` (every alert), comma-separated
MONITOR_SHARD=I/N, or          this daemon's shard (docs/scale-out.md)
  MONITOR_SHARD_TOTAL=N        (the index from DYNO=worker.I)
MONITOR_INTERVAL               default collection interval (``15s``)
LOG_DRAIN_PASSWORD             enables POST /logs (Heroku log drain; basic-auth password)
  (+ LOG_DRAIN_TOKENS,         Logplex-Drain-Token allow-list,
  HEROKU_APP_NAME,             the app label when the drain URL names none,
  MONITOR_DRAIN_ROUTES)        route patterns such as /products/:id)
=============================  ==================================================

Lists (origins, URLs) are separated by commas or white space.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

_COLOR_URL = re.compile(r"^HEROKU_POSTGRESQL_(?P<color>[A-Z0-9_]+)_URL$")


def _split(value: str | None) -> list[str]:
    return [v for v in re.split(r"[\s,]+", value or "") if v]


def _same_database(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.hostname, pa.port, pa.path, pa.username) == (
        pb.hostname,
        pb.port,
        pb.path,
        pb.username,
    )


def _probe_name(url: str, taken: set[str]) -> str:
    parts = urlsplit(url)
    base = re.sub(r"[^A-Za-z0-9_.\-]+", "_", f"{parts.hostname}{parts.path}".rstrip("/"))
    base = base.strip("_")[:55] or "probe"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def config_from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """A raw config document built from environment variables (validated later)."""
    env = {k: v for k, v in environ.items() if v != ""}
    doc: dict[str, Any] = {}
    targets: dict[str, Any] = {}

    if "MONITOR_INTERVAL" in env:
        doc["interval"] = env["MONITOR_INTERVAL"]

    postgres: list[dict[str, str]] = []
    database_url = env.get("DATABASE_URL")
    if database_url:
        postgres.append({"name": "primary", "url": database_url})
    for key in sorted(env):
        m = _COLOR_URL.match(key)
        if not m:
            continue
        url = env[key]
        if database_url and _same_database(url, database_url):
            continue
        postgres.append({"name": m["color"].lower(), "url": url})
    if postgres:
        targets["postgres"] = postgres

    if "PGBOUNCER_URL" in env:
        targets["pgbouncer"] = [{"name": "pgbouncer", "url": env["PGBOUNCER_URL"]}]

    redis_url = env.get("REDIS_TLS_URL") or env.get("REDIS_URL")
    if redis_url:
        targets["redis"] = [{"name": "redis", "url": redis_url}]

    if "MEMCACHIER_SERVERS" in env:
        memcached: dict[str, str] = {"name": "memcachier", "servers": env["MEMCACHIER_SERVERS"]}
        if "MEMCACHIER_USERNAME" in env:
            memcached["username"] = env["MEMCACHIER_USERNAME"]
        if "MEMCACHIER_PASSWORD" in env:
            memcached["password"] = env["MEMCACHIER_PASSWORD"]
        targets["memcached"] = [memcached]

    # CRUX_API_KEY alone may serve PSI only; without origins for either it is an error
    if "MONITOR_ORIGINS" in env or ("CRUX_API_KEY" in env and "MONITOR_PSI_URLS" not in env):
        crux: dict[str, Any] = {"origins": _split(env.get("MONITOR_ORIGINS"))}
        if "CRUX_API_KEY" in env:
            crux["api_key"] = env["CRUX_API_KEY"]
        targets["crux"] = crux

    if "MONITOR_PSI_URLS" in env:
        psi: dict[str, Any] = {"urls": _split(env["MONITOR_PSI_URLS"])}
        psi_key = env.get("PSI_API_KEY") or env.get("CRUX_API_KEY")
        if psi_key:
            psi["api_key"] = psi_key
        targets["psi"] = psi

    if "MONITOR_VITALS_ORIGINS" in env:
        rum: dict[str, Any] = {"allowed_origins": _split(env["MONITOR_VITALS_ORIGINS"])}
        if "MONITOR_VITALS_ROUTES" in env:
            rum["routes"] = _split(env["MONITOR_VITALS_ROUTES"])
        if "DYNO" in env:
            rum["trusted_proxy_hops"] = 1  # the Heroku router appends the client address
        targets["rum"] = rum

    probe_urls = _split(env.get("MONITOR_PROBE_URLS"))
    if probe_urls:
        taken: set[str] = set()
        targets["http"] = [{"name": _probe_name(u, taken), "url": u} for u in probe_urls]

    if targets:
        doc["targets"] = targets

    http: dict[str, Any] = {}
    if "MONITOR_LISTEN" in env:
        http["listen"] = env["MONITOR_LISTEN"]
    elif "PORT" in env:
        http["listen"] = f"0.0.0.0:{env['PORT']}"
    elif "DYNO" in env:
        # a worker dyno receives no HTTP: keep /metrics off the dyno network
        http["listen"] = "127.0.0.1:9187"
    if "METRICS_AUTH_TOKEN" in env:
        http["auth_token"] = env["METRICS_AUTH_TOKEN"]
    if env.get("MONITOR_PUBLIC_READ_ONLY", "").lower() in ("1", "true", "yes"):
        http["public_read_only"] = True
    if http:
        doc["http"] = http

    if "REMOTE_WRITE_URL" in env:
        remote: dict[str, str] = {"url": env["REMOTE_WRITE_URL"]}
        for suffix in ("username", "password", "bearer_token", "interval", "max_queue_samples"):
            key = f"REMOTE_WRITE_{suffix.upper()}"
            if key in env:
                remote[suffix] = env[key]
        doc["remote_write"] = remote

    state_url = env.get("MONITOR_STATE_URL")
    sharded = bool(env.get("MONITOR_SHARD")) or env.get("MONITOR_SHARD_TOTAL", "1") != "1"
    if state_url is None and "DYNO" in env and database_url and not sharded:
        state_url = database_url  # sharded: each its own state (docs/scale-out.md)
    if state_url:
        doc["state"] = {"url": state_url}

    if "LOG_DRAIN_PASSWORD" in env or "LOG_DRAIN_TOKENS" in env:
        drain: dict[str, Any] = {}
        if "LOG_DRAIN_PASSWORD" in env:
            drain["password"] = env["LOG_DRAIN_PASSWORD"]
        if "LOG_DRAIN_TOKENS" in env:
            drain["drain_tokens"] = _split(env["LOG_DRAIN_TOKENS"])
        if "HEROKU_APP_NAME" in env:
            drain["default_app"] = env["HEROKU_APP_NAME"]
        if "MONITOR_DRAIN_ROUTES" in env:
            drain["routes"] = _split(env["MONITOR_DRAIN_ROUTES"])
        doc["log_drain"] = drain

    receivers: dict[str, Any] = {}
    routes: list[dict[str, Any]] = []
    if "PAGERDUTY_ROUTING_KEY" in env:
        receivers["pagerduty"] = {"type": "pagerduty", "routing_key": env["PAGERDUTY_ROUTING_KEY"]}
    if "SLACK_WEBHOOK_URL" in env:
        receivers["slack"] = {"type": "slack", "webhook_url": env["SLACK_WEBHOOK_URL"]}
    if "ALERTMANAGER_URLS" in env:
        am = {"type": "alertmanager", "urls": _split(env["ALERTMANAGER_URLS"])}
        receivers["alertmanager"] = am
        routes.append({"receivers": ["alertmanager"], "continue": True})
    if receivers:
        critical = [n for n in ("pagerduty", "slack") if n in receivers]
        if critical:
            routes.append({"match": {"severity": "critical"}, "receivers": critical})
        if "slack" in receivers:
            routes.append({"match": {"severity": "warning"}, "receivers": ["slack"]})
        doc["receivers"] = receivers
        doc["routes"] = routes
    return doc

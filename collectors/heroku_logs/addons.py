"""Heroku Postgres, Heroku Data for Redis and PgBouncer metric lines -> gauges.

``source=DATABASE addon=postgresql-curly-12345 sample#db_size=26219348792bytes ...``:
labels ``source`` (the attachment) and ``addon`` (empty in old lines that lack it);
every known ``sample#`` field becomes a gauge in base units (``bytes``, ``kB`` = KiB,
plain bytes, 0-1 ratios; old float forms such as ``4347350804.0bytes``). These give
database health where the daemon has no connection of its own.
"""

from __future__ import annotations

from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.kv import KV, in_base_unit

Field = tuple[str, str, str]
"""(metric name, extra label name or "", its value)."""


def _common(prefix: str, own: str) -> dict[str, Field]:
    return {
        "active-connections": (f"{prefix}_active_connections", "", ""),
        "max-connections": (f"{prefix}_max_connections", "", ""),
        "load-avg-1m": (f"{prefix}_load_average", "window", "1m"),
        "load-avg-5m": (f"{prefix}_load_average", "window", "5m"),
        "load-avg-15m": (f"{prefix}_load_average", "window", "15m"),
        "read-iops": (f"{prefix}_read_iops", "", ""),
        "write-iops": (f"{prefix}_write_iops", "", ""),
        "max-iops": (f"{prefix}_max_iops", "", ""),
        "iops-percentage-used": (f"{prefix}_iops_used_ratio", "", ""),
        "memory-total": (f"{prefix}_memory_bytes", "kind", "total"),
        "memory-free": (f"{prefix}_memory_bytes", "kind", "free"),
        "memory-cached": (f"{prefix}_memory_bytes", "kind", "cached"),
        f"memory-{own}": (f"{prefix}_memory_bytes", "kind", own),
        "memory-percentage-used": (f"{prefix}_memory_used_ratio", "", ""),
    }


POSTGRES: dict[str, Field] = {
    **_common("heroku_postgres", "postgres"),
    "current_transaction": ("heroku_postgres_current_transaction", "", ""),
    "db_size": ("heroku_postgres_db_size_bytes", "", ""),
    "db-max-size": ("heroku_postgres_db_max_size_bytes", "", ""),
    "db-size-percentage-used": ("heroku_postgres_db_size_used_ratio", "", ""),
    "tables": ("heroku_postgres_tables", "", ""),
    "waiting-connections": ("heroku_postgres_waiting_connections", "", ""),
    "connections-percentage-used": ("heroku_postgres_connections_used_ratio", "", ""),
    "index-cache-hit-rate": ("heroku_postgres_cache_hit_ratio", "scope", "index"),
    "table-cache-hit-rate": ("heroku_postgres_cache_hit_ratio", "scope", "table"),
    "tmp-disk-used": ("heroku_postgres_tmp_disk_used_bytes", "", ""),
    "tmp-disk-available": ("heroku_postgres_tmp_disk_available_bytes", "", ""),
    "wal-percentage-used": ("heroku_postgres_wal_used_ratio", "", ""),
    "follower-lag-commits": ("heroku_postgres_follower_lag_commits", "", ""),
}
REDIS: dict[str, Field] = {
    **_common("heroku_redis", "redis"),
    "connection-percentage-used": ("heroku_redis_connections_used_ratio", "", ""),
    "hit-rate": ("heroku_redis_hit_ratio", "", ""),
    "evicted-keys": ("heroku_redis_evicted_keys", "", ""),
}
PGBOUNCER: dict[str, Field] = {
    "client_active": ("heroku_pgbouncer_clients", "state", "active"),
    "client_waiting": ("heroku_pgbouncer_clients", "state", "waiting"),
    "server_active": ("heroku_pgbouncer_servers", "state", "active"),
    "server_idle": ("heroku_pgbouncer_servers", "state", "idle"),
    "max_wait": ("heroku_pgbouncer_max_wait_seconds", "", ""),
    "avg_query": ("heroku_pgbouncer_avg_query_seconds", "", ""),
    "avg_recv": ("heroku_pgbouncer_avg_recv_bytes_per_second", "", ""),
    "avg_sent": ("heroku_pgbouncer_avg_sent_bytes_per_second", "", ""),
}
MICROSECONDS = frozenset({"max_wait", "avg_query"})
"""PgBouncer's SHOW STATS convention (µs); converted to seconds."""
FAMILIES: dict[str, dict[str, Field]] = {
    "postgres": POSTGRES,
    "redis": REDIS,
    "pgbouncer": PGBOUNCER,
}
LABELS: dict[str, tuple[str, ...]] = {}
"""Metric name -> its extra label names (filled below; used by the exposition)."""
for _table in FAMILIES.values():
    for _name, _label, _ in _table.values():
        LABELS[_name] = (_label,) if _label else ()


def parse_addon(state: DrainState, family: str, app: str, message: str, now: float) -> bool:
    """Record one metrics line of ``family`` (``postgres``, ``redis``, ``pgbouncer``)."""
    table = FAMILIES[family]
    f = dict(KV.findall(message))
    source = f.get("source")
    if not source:
        return False
    values: dict[tuple[str, str], float] = {}
    for key, raw in f.items():
        if not key.startswith("sample#"):
            continue
        name = key[7:]
        spec = table.get(name)
        if spec is None:
            continue
        converted = in_base_unit(raw)
        if converted is None:
            continue
        value = converted[0]
        if name in MICROSECONDS:
            value /= 1e6
        values[(spec[0], spec[2])] = value
    if not values:
        return False
    state.set_addon_gauges(family, app, source[:64], f.get("addon", "")[:64], values, now)
    return True

"""Redis ``INFO``: hits and misses, memory, clients, keyspace.

Counters are running totals kept across runs: a new ``run_id`` (restart) or any counter
going down (``CONFIG RESETSTAT``) is a reset, after which the new raw value is the
increase. The hit ratio covers the interval since the previous run and is absent when
there were no lookups (and on the first run). ``redis_memory_max_bytes`` is 0 when no
``maxmemory`` is set; ``redis_memory_used_ratio`` is then absent. Exposition::

    redis_up{target="cache"} 1.0
    redis_version_info{target="cache",version="7.0.15",mode="standalone"} 1.0
    redis_uptime_seconds{target="cache"} 3600.0
    redis_keyspace_hits_total{target="cache"} 9000.0
    redis_keyspace_misses_total{target="cache"} 1000.0
    redis_cache_hit_ratio{target="cache"} 0.9
    redis_evicted_keys_total{target="cache"} 0.0
    redis_expired_keys_total{target="cache"} 12.0
    redis_commands_processed_total{target="cache"} 20123.0
    redis_connections_received_total{target="cache"} 40.0
    redis_rejected_connections_total{target="cache"} 0.0
    redis_memory_used_bytes{target="cache"} 1048576.0
    redis_memory_max_bytes{target="cache"} 26214400.0
    redis_memory_used_ratio{target="cache"} 0.04
    redis_memory_fragmentation_ratio{target="cache"} 1.2
    redis_connected_clients{target="cache"} 5.0
    redis_blocked_clients{target="cache"} 0.0
    redis_max_clients{target="cache"} 10000.0
    redis_db_keys{target="cache",db="db0"} 120.0
    redis_db_keys_expiring{target="cache",db="db0"} 30.0
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from collectors.running_totals import CounterGroup, ratio
from monitor.kernel.snapshot import MetricSpec, Sample, counter, gauge, info

REDIS_UP = gauge("redis_up", "1 if the Redis server answered INFO, else 0")
VERSION = info("redis_version_info", "Redis version and mode", "version", "mode")
UPTIME = gauge("redis_uptime_seconds", "Seconds since the server started")
HIT_RATIO = gauge("redis_cache_hit_ratio", "keyspace hits / (hits + misses) over the last interval")
MEMORY_USED_RATIO = gauge("redis_memory_used_ratio", "used_memory / maxmemory (absent: no limit)")
DB_KEYS = gauge("redis_db_keys", "Keys in a logical database", "db")
DB_EXPIRING = gauge("redis_db_keys_expiring", "Keys with a TTL in a logical database", "db")

# INFO field -> exported counter
COUNTERS: dict[str, MetricSpec] = {
    "keyspace_hits": counter("redis_keyspace_hits_total", "Successful key lookups"),
    "keyspace_misses": counter("redis_keyspace_misses_total", "Failed key lookups"),
    "evicted_keys": counter("redis_evicted_keys_total", "Keys evicted by maxmemory"),
    "expired_keys": counter("redis_expired_keys_total", "Keys removed on expiry"),
    "total_commands_processed": counter(
        "redis_commands_processed_total", "Commands processed by the server"
    ),
    "total_connections_received": counter(
        "redis_connections_received_total", "Connections accepted"
    ),
    "rejected_connections": counter(
        "redis_rejected_connections_total", "Connections rejected because of maxclients"
    ),
}
# INFO field -> exported gauge
GAUGES: dict[str, MetricSpec] = {
    "uptime_in_seconds": UPTIME,
    "used_memory": gauge("redis_memory_used_bytes", "Memory allocated by Redis"),
    "maxmemory": gauge("redis_memory_max_bytes", "maxmemory (0 = no limit)"),
    "mem_fragmentation_ratio": gauge(
        "redis_memory_fragmentation_ratio", "Resident memory over used memory"
    ),
    "connected_clients": gauge("redis_connected_clients", "Client connections"),
    "blocked_clients": gauge("redis_blocked_clients", "Clients blocked in BLPOP and the like"),
    "maxclients": gauge("redis_max_clients", "maxclients"),
}


def number(value: Any) -> float | None:
    """A numeric INFO value; None for text, absent or malformed values."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class InfoReader:
    """Turns successive ``INFO`` readings of one server into samples."""

    def __init__(self) -> None:
        self._counters = CounterGroup()
        self._run_id: str | None = None

    def samples(self, target: str, data: Mapping[str, Any]) -> Iterator[Sample]:
        yield REDIS_UP(1, target=target)
        version = data.get("redis_version") or data.get("valkey_version")
        if version:
            mode = str(data.get("redis_mode") or data.get("server_mode") or "")
            yield VERSION(1, str(version), mode, target=target)
        for field, spec in GAUGES.items():
            value = number(data.get(field))
            if value is not None:
                yield spec(value, target=target)
        used, limit = number(data.get("used_memory")), number(data.get("maxmemory"))
        if used is not None and limit:
            yield MEMORY_USED_RATIO(used / limit, target=target)
        yield from self._counter_samples(target, data)
        yield from keyspace_samples(target, data)

    def _counter_samples(self, target: str, data: Mapping[str, Any]) -> Iterator[Sample]:
        raw = {f: v for f in COUNTERS if (v := number(data.get(f))) is not None}
        run_id = data.get("run_id")
        restarted = bool(self._run_id and run_id and run_id != self._run_id)
        self._run_id = str(run_id) if run_id else self._run_id
        update = self._counters.update(raw, restarted=restarted)
        for field, total in update.totals.items():
            yield COUNTERS[field](total, target=target)
        if update.deltas is not None:
            hits = update.deltas.get("keyspace_hits", 0.0)
            lookups = hits + update.deltas.get("keyspace_misses", 0.0)
            hit_ratio = ratio(hits, lookups)
            if hit_ratio is not None:
                yield HIT_RATIO(hit_ratio, target=target)


def keyspace_samples(target: str, data: Mapping[str, Any]) -> Iterator[Sample]:
    """``db0:keys=1,expires=0,avg_ttl=0``, as redis-py parses it (a dict) or as text."""
    for key, value in data.items():
        if not (key.startswith("db") and key[2:].isdigit()):
            continue
        fields = value if isinstance(value, Mapping) else _key_values(str(value))
        keys, expires = number(fields.get("keys")), number(fields.get("expires"))
        if keys is not None:
            yield DB_KEYS(keys, key, target=target)
        if expires is not None:
            yield DB_EXPIRING(expires, key, target=target)


def _key_values(text: str) -> dict[str, str]:
    pairs = (item.partition("=") for item in text.split(","))
    return {k: v for k, _, v in pairs if k}

"""Memcached ``stats`` of every server of a target, summed into the target's samples.

Counters are running totals kept per server across runs: a new ``pid`` or a lower
``uptime`` is a restart, as is any counter going down; after it the new raw value is
the increase. A server that did not answer keeps contributing its last totals, so the
summed counters never go backwards. The hit ratio covers the interval since the
previous run of the servers that answered, and is absent when there were no lookups.
``memcached_up`` is 1 only when every server answered. Exposition::

    memcached_up{target="sessions"} 1.0
    memcached_server_up{target="sessions",server="127.0.0.1:11211"} 1.0
    memcached_version_info{target="sessions",server="127.0.0.1:11211",version="1.6.18"} 1.0
    memcached_uptime_seconds{target="sessions",server="127.0.0.1:11211"} 3600.0
    memcached_get_hits_total{target="sessions"} 900.0
    memcached_get_misses_total{target="sessions"} 100.0
    memcached_get_expired_total{target="sessions"} 3.0
    memcached_evictions_total{target="sessions"} 0.0
    memcached_cache_hit_ratio{target="sessions"} 0.9
    memcached_items{target="sessions"} 420.0
    memcached_memory_used_bytes{target="sessions"} 123456.0
    memcached_memory_limit_bytes{target="sessions"} 67108864.0
    memcached_memory_used_ratio{target="sessions"} 0.0018
    memcached_connections{target="sessions"} 10.0
    memcached_max_connections{target="sessions"} 1024.0
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from collectors.running_totals import CounterGroup, ratio
from monitor.kernel.snapshot import MetricSpec, Sample, counter, gauge, info

MEMCACHED_UP = gauge("memcached_up", "1 if every server of the target answered, else 0")
SERVER_UP = gauge("memcached_server_up", "1 if this server answered, else 0", "server")
VERSION = info("memcached_version_info", "memcached version", "server", "version")
UPTIME = gauge("memcached_uptime_seconds", "Seconds since the server started", "server")
HIT_RATIO = gauge("memcached_cache_hit_ratio", "get hits / (hits + misses) over the last interval")
MEMORY_USED_RATIO = gauge("memcached_memory_used_ratio", "bytes / limit_maxbytes")

# stats field -> exported counter (summed over the servers)
COUNTERS: dict[str, MetricSpec] = {
    "get_hits": counter("memcached_get_hits_total", "get requests that found the key"),
    "get_misses": counter("memcached_get_misses_total", "get requests that missed"),
    "get_expired": counter("memcached_get_expired_total", "get requests that found an expired key"),
    "evictions": counter("memcached_evictions_total", "Valid items evicted to free memory"),
}
# stats field -> exported gauge (summed over the servers that answered)
GAUGES: dict[str, MetricSpec] = {
    "curr_items": gauge("memcached_items", "Items stored"),
    "bytes": gauge("memcached_memory_used_bytes", "Bytes used to store items"),
    "limit_maxbytes": gauge("memcached_memory_limit_bytes", "Memory limit (limit_maxbytes)"),
    "curr_connections": gauge("memcached_connections", "Open connections"),
    "max_connections": gauge("memcached_max_connections", "Connection limit"),
}


def number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


@dataclass
class ServerState:
    """What the job remembers about one server between runs."""

    counters: CounterGroup = field(default_factory=CounterGroup)
    totals: dict[str, float] = field(default_factory=dict)
    pid: str | None = None
    uptime: float | None = None

    def update(self, stats: Mapping[str, str]) -> dict[str, float] | None:
        """Record one reading; the counter deltas since the last one (None at first)."""
        pid, uptime = stats.get("pid"), number(stats.get("uptime"))
        restarted = (self.pid is not None and pid is not None and pid != self.pid) or (
            self.uptime is not None and uptime is not None and uptime < self.uptime
        )
        self.pid, self.uptime = pid or self.pid, uptime
        raw = {f: v for f in COUNTERS if (v := number(stats.get(f))) is not None}
        result = self.counters.update(raw, restarted=restarted)
        self.totals.update(result.totals)
        return result.deltas


class StatsAggregator:
    """Turns per-server readings of one target into the target's samples."""

    def __init__(self, servers: Sequence[str]) -> None:
        self._states = {server: ServerState() for server in servers}

    def samples(
        self, target: str, readings: Mapping[str, Mapping[str, str] | None]
    ) -> Iterator[Sample]:
        """``readings``: server -> its stats, or None when it did not answer."""
        answered = {s: r for s, r in readings.items() if r is not None}
        yield MEMCACHED_UP(1 if len(answered) == len(readings) else 0, target=target)
        deltas: dict[str, float] = {}
        have_deltas = False
        for server, stats in readings.items():
            yield SERVER_UP(0 if stats is None else 1, server, target=target)
            if stats is None:
                continue
            if "version" in stats:
                yield VERSION(1, server, stats["version"], target=target)
            uptime = number(stats.get("uptime"))
            if uptime is not None:
                yield UPTIME(uptime, server, target=target)
            server_deltas = self._states[server].update(stats)
            if server_deltas is not None:
                have_deltas = True
                for name, value in server_deltas.items():
                    deltas[name] = deltas.get(name, 0.0) + value
        for name, spec in COUNTERS.items():
            values = [s.totals[name] for s in self._states.values() if name in s.totals]
            if values:
                yield spec(sum(values), target=target)
        if have_deltas:
            hits = deltas.get("get_hits", 0.0)
            hit_ratio = ratio(hits, hits + deltas.get("get_misses", 0.0))
            if hit_ratio is not None:
                yield HIT_RATIO(hit_ratio, target=target)
        sums: dict[str, float] = {}
        for stats in answered.values():
            for name in GAUGES:
                reading = number(stats.get(name))
                if reading is not None:
                    sums[name] = sums.get(name, 0.0) + reading
        for name, total in sums.items():
            yield GAUGES[name](total, target=target)
        if "bytes" in sums and "limit_maxbytes" in sums:
            used_ratio = ratio(sums["bytes"], sums["limit_maxbytes"])
            if used_ratio is not None:
                yield MEMORY_USED_RATIO(used_ratio, target=target)

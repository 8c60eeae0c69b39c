"""Memcached / MemCachier collector: one :class:`MemcachedSource` per configured target.

Every server of the target is read concurrently, each under its own deadline, over
one kept connection that is reopened once when it went stale (server restarted). The
samples are described in :mod:`collectors.memcached.stats`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from collectors.closing import BackgroundCloser
from collectors.memcached.config import MemcachedTarget
from collectors.memcached.protocol import MemcachedConnection
from collectors.memcached.stats import MEMCACHED_UP, StatsAggregator, number
from monitor.kernel.redact import describe_error
from monitor.kernel.snapshot import Sample
from monitor.kernel.source import CheckResult, CollectorJob, Source
from monitor.kernel.timing import job_timeout

STALE_ERRORS = (OSError, EOFError, asyncio.IncompleteReadError)
"""What a connection closed by the server (e.g. a restart) raises on its next use."""


def server_name(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def read_stats(conn: MemcachedConnection) -> dict[str, str]:
    """``stats`` over a kept connection; one fresh connection if it had gone stale."""
    reused = conn.connected
    try:
        return await conn.stats()
    except STALE_ERRORS:
        await conn.close()
        if not reused:
            raise
    return await conn.stats()


class MemcachedJob(CollectorJob):
    collector = "memcached"

    def __init__(self, source: MemcachedSource) -> None:
        self._source = source
        self.target = source.name
        self.interval = source.interval
        self.timeout = source.timeout
        self._aggregator = StatsAggregator(list(source.connections))

    async def collect(self) -> Sequence[Sample]:
        results = await self._source.read_all(self.timeout * 0.9)
        readings: dict[str, Mapping[str, str] | None] = {
            server: r if isinstance(r, dict) else None for server, r in results.items()
        }
        if not any(r is not None for r in readings.values()):
            first = next(iter(results.values()))
            assert isinstance(first, BaseException)
            raise first
        return list(self._aggregator.samples(self.target, readings))

    def failure_samples(self) -> Sequence[Sample]:
        return (MEMCACHED_UP(0, target=self.target),)

    def on_timeout(self) -> None:
        self._source.drop_connections()


class MemcachedSource(Source):
    kind = "memcached"

    def __init__(self, target: MemcachedTarget, default_interval: float) -> None:
        self.name = target.name
        self.target = target
        self.interval = target.interval or default_interval
        self.timeout = target.timeout or job_timeout(self.interval)
        password = target.password.get_secret_value() if target.password else None
        self.connections = {
            server_name(host, port): MemcachedConnection(
                host,
                port,
                username=target.username,
                password=password,
                connect_timeout=target.connect_timeout,
            )
            for host, port in target.server_list
        }
        self._closer = BackgroundCloser()
        self._job = MemcachedJob(self)

    async def _read_one(self, conn: MemcachedConnection, deadline: float) -> dict[str, str]:
        try:
            async with asyncio.timeout(deadline):
                return await read_stats(conn)
        except BaseException:
            await conn.close()
            raise

    async def read_all(self, deadline: float) -> dict[str, dict[str, str] | BaseException]:
        """Each server's stats, or the exception that reading it raised."""
        servers = list(self.connections)
        results = await asyncio.gather(
            *(self._read_one(self.connections[s], deadline) for s in servers),
            return_exceptions=True,
        )
        return dict(zip(servers, results, strict=True))

    def drop_connections(self) -> None:
        for conn in self.connections.values():
            self._closer.close_later(conn.close())

    def jobs(self) -> Sequence[CollectorJob]:
        return [self._job]

    async def check(self) -> CheckResult:
        item = f"memcached/{self.name}"
        results = await self.read_all(self.timeout)
        parts, ok = [], True
        for server, result in results.items():
            if isinstance(result, BaseException):
                ok = False
                if isinstance(result, TimeoutError):
                    error = f"no answer within {self.timeout:g}s"
                    if not self.target.username:
                        error += " (a SASL-only server ignores text commands: set username)"
                else:
                    error = describe_error(result)
                parts.append(f"{server} FAILED: {error}")
                continue
            limit = number(result.get("limit_maxbytes")) or 0.0
            parts.append(
                f"{server} memcached {result.get('version', '?')}, {limit / 2**20:.0f} MiB limit"
            )
        if self.target.username:
            parts.append(f"SASL as {self.target.username}")
        return CheckResult(item, ok, "; ".join(parts))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections.values()))
        await self._closer.wait()


def sources(targets: Sequence[MemcachedTarget], interval: float) -> list[Source]:
    return [MemcachedSource(t, interval) for t in targets]

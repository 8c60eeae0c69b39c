"""Redis (and Valkey) collector: one :class:`RedisSource` per configured server.

Named ``redis_cache`` so it never shadows the ``redis`` library. The samples are
described in :mod:`collectors.redis_cache.info`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from collectors.closing import BackgroundCloser
from collectors.redis_cache.client import make_client, tls_verify
from collectors.redis_cache.config import RedisTarget
from collectors.redis_cache.info import REDIS_UP, InfoReader, number
from monitor.kernel.redact import describe_error
from monitor.kernel.snapshot import Sample
from monitor.kernel.source import CheckResult, CollectorJob, Source
from monitor.kernel.timing import job_timeout


class RedisJob(CollectorJob):
    collector = "redis"

    def __init__(self, source: RedisSource) -> None:
        self._source = source
        self.target = source.name
        self.interval = source.interval
        self.timeout = source.timeout
        self._reader = InfoReader()

    async def collect(self) -> Sequence[Sample]:
        data = await self._source.info()
        return list(self._reader.samples(self.target, data))

    def failure_samples(self) -> Sequence[Sample]:
        return (REDIS_UP(0, target=self.target),)

    def on_timeout(self) -> None:
        self._source.discard_client()


class RedisSource(Source):
    kind = "redis"

    def __init__(self, target: RedisTarget, default_interval: float) -> None:
        self.name = target.name
        self.target = target
        self.interval = target.interval or default_interval
        self.timeout = target.timeout or job_timeout(self.interval)
        self._client: Redis | None = None
        self._closer = BackgroundCloser()
        self._job = RedisJob(self)

    def _get_client(self) -> Redis:
        if self._client is None:
            self._client = make_client(self.target, self.timeout)
        return self._client

    async def info(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._get_client().info()
        return data

    def discard_client(self) -> None:
        """Drop the client after a timeout; its connections may be mid-reply."""
        client, self._client = self._client, None
        if client is not None:
            self._closer.close_later(_close_quietly(client))

    def jobs(self) -> Sequence[CollectorJob]:
        return [self._job]

    async def check(self) -> CheckResult:
        item = f"redis/{self.name}"
        try:
            async with asyncio.timeout(self.timeout):
                data = await self.info()
        except TimeoutError:
            self.discard_client()
            return CheckResult(item, False, f"no answer within {self.timeout:g}s")
        except Exception as exc:
            detail = describe_error(exc)
            if "CERTIFICATE_VERIFY_FAILED" in detail:
                detail += " (set tls_ca_file, or tls_verify: false for a self-signed server)"
            return CheckResult(item, False, detail)
        version = data.get("redis_version") or data.get("valkey_version") or "?"
        used = number(data.get("used_memory")) or 0.0
        limit = number(data.get("maxmemory")) or 0.0
        memory = (
            f"{_mib(used)} used of {_mib(limit)}" if limit else f"{_mib(used)} used, no maxmemory"
        )
        clients = number(data.get("connected_clients")) or 0.0
        detail = f"Redis {version}, {memory}, {clients:g} clients"
        if self.target.uses_tls:
            detail += ", TLS" + ("" if tls_verify(self.target) else " (certificate not verified)")
        return CheckResult(item, True, detail)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _close_quietly(client)
        await self._closer.wait()


def _mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


async def _close_quietly(client: Redis) -> None:
    with contextlib.suppress(Exception):
        await client.aclose()


def sources(targets: Sequence[RedisTarget], interval: float) -> list[Source]:
    return [RedisSource(t, interval) for t in targets]

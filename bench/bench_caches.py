"""How long one collection of PgBouncer, Redis and Memcached takes, against real servers.

Starts throw-away servers (skipping any whose binary is missing), runs each collector
job RUNS times back to back, and prints the median, p95 and max per run, and the
samples per run. Run with ``uv run python bench/bench_caches.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import time
from collections.abc import Iterator

from collectors.memcached import MemcachedSource
from collectors.memcached.config import MemcachedTarget
from collectors.pgbouncer import PgBouncerSource
from collectors.pgbouncer.config import PgBouncerTarget
from collectors.redis_cache import RedisSource
from collectors.redis_cache.config import RedisTarget
from monitor.app.demo.testbed import TestBed, TestBedError
from monitor.app.demo.testservers import memcached_server, pgbouncer_server, redis_server
from monitor.kernel.source import CollectorJob, Source

RUNS = 300


async def bench(label: str, source: Source) -> None:
    job: CollectorJob = source.jobs()[0]
    await job.collect()  # connect once
    times: list[float] = []
    count = 0
    for _ in range(RUNS):
        started = time.perf_counter()
        count = len(await job.collect())
        times.append((time.perf_counter() - started) * 1000)
    await source.close()
    times.sort()
    print(
        f"{label:<28} median {statistics.median(times):6.2f} ms   "
        f"p95 {times[int(len(times) * 0.95)]:6.2f} ms   max {times[-1]:6.2f} ms   "
        f"{count} samples/run"
    )


@contextlib.contextmanager
def maybe(binary: str) -> Iterator[str | None]:
    """The binary's path, or None (and a line saying so) when it is not installed."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin")
    if path is None:
        print(f"{binary}: not installed, skipped")
    yield path


async def main() -> None:
    print(f"{RUNS} collections each, after one warm-up")
    with maybe("redis-server") as binary:
        if binary:
            with redis_server(binary) as srv:
                target = RedisTarget(name="cache", url=srv.url)
                await bench("redis INFO", RedisSource(target, 15.0))
            openssl = shutil.which("openssl")
            if openssl:
                with redis_server(binary, openssl=openssl) as srv:
                    target = RedisTarget(name="cache", url=srv.url, tls_verify=False)
                    await bench("redis INFO over TLS", RedisSource(target, 15.0))
    with maybe("memcached") as binary:
        if binary:
            with memcached_server(binary) as srv:
                target = MemcachedTarget(name="mc", servers=srv.address)
                await bench("memcached stats (text)", MemcachedSource(target, 15.0))
            saslpasswd2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
            with memcached_server(
                binary, username="u", password="p", saslpasswd2=saslpasswd2
            ) as srv:
                target = MemcachedTarget(name="mc", servers=srv.address, username="u", password="p")
                await bench("memcached stat (SASL)", MemcachedSource(target, 15.0))
    with maybe("pgbouncer") as binary:
        if binary:
            try:
                bed = TestBed(replica=False)
            except TestBedError as exc:
                print(f"pgbouncer: no PostgreSQL ({exc}), skipped")
                return
            with bed, pgbouncer_server(binary, bed.primary.host, bed.primary.port) as srv:
                target = PgBouncerTarget(name="pool", url=srv.admin_url())
                await bench("pgbouncer 6 SHOW commands", PgBouncerSource(target, 15.0))


if __name__ == "__main__":
    asyncio.run(main())

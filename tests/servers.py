"""Real Redis, Memcached and PgBouncer servers for the tests (see monitor/app/demo/testservers.py).

The binaries are located with ``support.require_binary``: a missing one skips the test
locally and fails it in CI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from support import require_binary

from monitor.app.demo import testservers
from monitor.app.demo.testservers import (
    MemcachedServer,
    PgBouncerServer,
    RedisServer,
    memcached_supports_sasl,
)

__all__ = [
    "MemcachedServer",
    "PgBouncerServer",
    "RedisServer",
    "memcached_server",
    "memcached_supports_sasl",
    "pgbouncer_server",
    "redis_server",
]


@contextlib.contextmanager
def redis_server(*, tls: bool = False, args: Sequence[str] = ()) -> Iterator[RedisServer]:
    binary = require_binary("redis-server")
    openssl = require_binary("openssl") if tls else None
    with testservers.redis_server(binary, openssl=openssl, args=args) as server:
        yield server


@contextlib.contextmanager
def memcached_server(
    *, username: str | None = None, password: str | None = None, memory_mb: int = 64
) -> Iterator[MemcachedServer]:
    binary = require_binary("memcached")
    saslpasswd2 = require_binary("saslpasswd2", "/usr/sbin/saslpasswd2") if username else ""
    with testservers.memcached_server(
        binary, username=username, password=password, saslpasswd2=saslpasswd2, memory_mb=memory_mb
    ) as server:
        yield server


@contextlib.contextmanager
def pgbouncer_server(
    upstream_host: str,
    upstream_port: int,
    *,
    pool_size: int = 2,
    users: dict[str, str] | None = None,
) -> Iterator[PgBouncerServer]:
    binary = require_binary("pgbouncer", "/usr/sbin/pgbouncer")
    with testservers.pgbouncer_server(
        binary, upstream_host, upstream_port, pool_size=pool_size, users=users
    ) as server:
        yield server

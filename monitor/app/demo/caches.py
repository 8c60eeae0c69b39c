"""Redis and Memcached for ``monitor demo``, when their binaries are installed.

:func:`demo_caches` starts whichever of ``redis-server`` and ``memcached`` is on the
PATH (a missing or failing one is skipped with a log line; the demo goes on without
it). :func:`run_cache_traffic` puts a little read-through cache traffic on them: reads
of a keyspace slightly larger than what is cached, so the hit ratio settles above 90%.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
import structlog

from monitor.app.demo.testservers import ServerStartError, memcached_server, redis_server

log = structlog.get_logger("monitor.demo")

KEYS = 100
"""Keys read; only keys below :data:`CACHED` are ever written, so the rest miss."""
CACHED = 95
TTL_SECONDS = 300


@dataclass(frozen=True)
class DemoCaches:
    redis_url: str | None = None
    memcached: str | None = None
    """``host:port``"""


def _start(stack: contextlib.ExitStack, binary_name: str, start: Callable[[str], Any]) -> Any:
    """The started server, or None when the binary is missing or does not start."""
    binary = shutil.which(binary_name)
    if not binary:
        return None
    try:
        return stack.enter_context(start(binary))
    except (ServerStartError, OSError) as exc:
        log.warning(f"{binary_name} did not start; the demo goes on without it", error=str(exc))
        return None


@contextlib.contextmanager
def demo_caches() -> Iterator[DemoCaches]:
    """Start the cache servers that are installed; stop and delete them afterwards."""
    with contextlib.ExitStack() as stack:
        redis_srv = _start(stack, "redis-server", redis_server)
        memcached_srv = _start(stack, "memcached", memcached_server)
        yield DemoCaches(
            redis_srv.url if redis_srv else None, memcached_srv.address if memcached_srv else None
        )


class _Memcached:
    """A minimal text-protocol client for the demo traffic."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._sock = socket.create_connection((host, int(port)), timeout=3)
        self._file = self._sock.makefile("rb")

    def get(self, key: str) -> bool:
        """Whether the key was found."""
        self._sock.sendall(f"get {key}\r\n".encode())
        line = self._file.readline()
        found = line.startswith(b"VALUE")
        if found:
            self._file.readline()  # the data
            line = self._file.readline()
        if line != b"END\r\n":
            raise ConnectionError(f"unexpected reply {line!r}")
        return found

    def set(self, key: str, value: bytes) -> None:
        self._sock.sendall(f"set {key} 0 {TTL_SECONDS} {len(value)}\r\n".encode() + value + b"\r\n")
        if self._file.readline() != b"STORED\r\n":
            raise ConnectionError("set failed")

    def close(self) -> None:
        self._file.close()
        self._sock.close()


def _redis_step(client: redis.Redis, rng: random.Random) -> None:
    key = f"demo:{rng.randrange(KEYS)}"
    if client.get(key) is None and int(key.split(":")[1]) < CACHED:
        client.set(key, "cached value", ex=TTL_SECONDS)


def _memcached_step(client: _Memcached, rng: random.Random) -> None:
    n = rng.randrange(KEYS)
    if not client.get(f"demo{n}") and n < CACHED:
        client.set(f"demo{n}", b"cached value")


def _close_quietly(*clients: redis.Redis | _Memcached | None) -> None:
    for client in clients:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


def run_cache_traffic(caches: DemoCaches, stop: threading.Event, *, rate: float = 20.0) -> None:
    """Read (and fill) the demo caches until ``stop`` is set; never raises."""
    rng = random.Random()
    redis_client: redis.Redis | None = None
    memcached_client: _Memcached | None = None
    while not stop.is_set():
        try:
            if caches.redis_url:
                if redis_client is None:
                    redis_client = redis.Redis.from_url(caches.redis_url, socket_timeout=3)
                _redis_step(redis_client, rng)
            if caches.memcached:
                if memcached_client is None:
                    memcached_client = _Memcached(caches.memcached)
                _memcached_step(memcached_client, rng)
        except Exception as exc:  # a server restarting: reconnect after a pause
            log.debug("demo cache traffic error (will reconnect)", error=str(exc))
            _close_quietly(redis_client, memcached_client)
            redis_client = memcached_client = None
            stop.wait(1.0)
            continue
        stop.wait(1.0 / rate)
    _close_quietly(redis_client, memcached_client)

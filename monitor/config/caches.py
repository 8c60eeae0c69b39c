"""Configuration of PgBouncer, Redis and Memcached targets."""

from __future__ import annotations

from pydantic import SecretStr

from monitor.config.types import Duration, Model, Name, PostgresUrl


class PgBouncerTarget(Model):
    """A PgBouncer admin console, e.g. ``postgresql://user:pw@host:6432/pgbouncer``."""

    name: Name
    url: PostgresUrl
    interval: Duration | None = None
    timeout: Duration | None = None


class RedisTarget(Model):
    """A Redis (or Valkey) server: ``redis://`` or ``rediss://`` URL."""

    name: Name
    url: SecretStr
    interval: Duration | None = None
    timeout: Duration | None = None


class MemcachedTarget(Model):
    """A Memcached server or a MemCachier cache (``servers`` as ``host:port[,host:port]``)."""

    name: Name
    servers: str
    username: str | None = None
    password: SecretStr | None = None
    interval: Duration | None = None
    timeout: Duration | None = None

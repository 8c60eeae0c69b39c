"""Configuration of PgBouncer, Redis and Memcached targets."""

from __future__ import annotations

import re
from typing import Annotated, Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import AfterValidator, BeforeValidator, SecretStr, model_validator

from monitor.config.types import Duration, Model, Name, PostgresUrl
from monitor.redact import redact

ADMIN_DATABASE = "pgbouncer"
MEMCACHED_PORT = 11211


def _admin_database(value: SecretStr) -> SecretStr:
    parts = urlsplit(value.get_secret_value())
    query = dict(parse_qsl(parts.query))
    dbname = query.get("dbname") or unquote(parts.path.lstrip("/"))
    if dbname != ADMIN_DATABASE:
        raise ValueError(
            f"a PgBouncer target must name the admin console database "
            f"'{ADMIN_DATABASE}' (e.g. postgresql://user@host:6432/pgbouncer), "
            f"got {redact(value.get_secret_value())!r}"
        )
    return value


class PgBouncerTarget(Model):
    """A PgBouncer admin console, e.g. ``postgresql://user:pw@host:6432/pgbouncer``.

    The user must be listed in PgBouncer's ``admin_users`` or ``stats_users``.
    """

    name: Name
    url: Annotated[PostgresUrl, AfterValidator(_admin_database)]
    interval: Duration | None = None
    timeout: Duration | None = None
    """Deadline of one collection, enforced by the monitor (PgBouncer accepts no
    ``statement_timeout``); defaults to 80% of the interval, at most 10s."""
    connect_timeout: Duration = 5.0

    def dsn(self) -> str:
        return self.url.get_secret_value()


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(value: Any) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value
    parts = urlsplit(value)
    if parts.scheme not in _REDIS_SCHEMES:
        raise ValueError(f"expected a redis://, rediss:// or unix:// URL, got {redact(value)!r}")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL {redact(value)!r}: {exc}") from None
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"URL {redact(value)!r} names no host")
    if parts.scheme == "unix" and not parts.path:
        raise ValueError(f"URL {redact(value)!r} names no socket path")
    return value


RedisUrl = Annotated[SecretStr, BeforeValidator(_redis_url)]


class RedisTarget(Model):
    """A Redis (or Valkey) server: ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL."""

    name: Name
    url: RedisUrl
    interval: Duration | None = None
    timeout: Duration | None = None
    """Deadline of one collection; defaults to 80% of the interval, at most 10s."""
    connect_timeout: Duration = 5.0
    tls_verify: bool | None = None
    """Verify the server certificate of a ``rediss://`` URL. Default: on, except on
    Heroku (``$DYNO`` set), whose Key-Value Store uses self-signed certificates."""
    tls_ca_file: str | None = None
    """CA bundle (PEM) to verify a ``rediss://`` server against; default: system CAs."""

    @property
    def uses_tls(self) -> bool:
        return self.url.get_secret_value().startswith("rediss://")

    @model_validator(mode="after")
    def _tls_options_need_tls(self) -> Self:
        if not self.uses_tls and (self.tls_verify is not None or self.tls_ca_file is not None):
            raise ValueError("tls_verify and tls_ca_file apply only to a rediss:// URL")
        return self


_SERVER = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\s\[\]]+))(?::(?P<port>\d+))?$")


def parse_servers(value: str) -> tuple[tuple[str, int], ...]:
    """``"host:port, host2"`` -> ``(("host", port), ("host2", 11211))``."""
    out: list[tuple[str, int]] = []
    for item in (v for v in re.split(r"[\s,]+", value) if v):
        m = _SERVER.match(item)
        port = int(m["port"]) if m and m["port"] else MEMCACHED_PORT
        if not m or not 0 < port < 65536:
            raise ValueError(f"invalid memcached server {item!r}; expected host:port")
        out.append((m["v6"] or m["host"], port))
    if not out:
        raise ValueError("servers is empty; expected host:port[,host:port]")
    if len(set(out)) != len(out):
        raise ValueError(f"servers lists a server twice: {value!r}")
    return tuple(out)


def _servers(value: str) -> str:
    parse_servers(value)
    return value


class MemcachedTarget(Model):
    """A Memcached server or a MemCachier cache (``servers`` as ``host:port[,host:port]``).

    With ``username`` (and ``password``) set, the monitor authenticates with SASL PLAIN
    over the binary protocol, as MemCachier requires; otherwise it uses the text protocol.
    """

    name: Name
    servers: Annotated[str, AfterValidator(_servers)]
    username: str | None = None
    password: SecretStr | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    """Deadline of one collection; defaults to 80% of the interval, at most 10s."""
    connect_timeout: Duration = 5.0

    @model_validator(mode="after")
    def _credentials_pair(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be set together for SASL")
        return self

    @property
    def server_list(self) -> tuple[tuple[str, int], ...]:
        return parse_servers(self.servers)

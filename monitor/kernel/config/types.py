"""Reusable annotated types for the configuration models."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr

from monitor.kernel.durations import parse_duration
from monitor.kernel.redact import redact


class Model(BaseModel):
    """Base of every config object: frozen, strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '15s', got {value!r}")
    if isinstance(value, int | float):
        raise ValueError(f"a duration needs a unit: write '{value}s' (or ms, m, h)")
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds, written in the config as ``15s``, ``5m``, ``1h``."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"invalid name {value!r}: use letters, digits, '_', '.', '-' (at most 63 characters)"
        )
    return value


Name = Annotated[str, AfterValidator(_name)]

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", ""})


def is_local_host(host: str | None) -> bool:
    """Loopback hosts and Unix sockets, which need no TLS."""
    if host is None or host in LOCAL_HOSTS or host.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


UNPARSED_USERINFO = (
    "the URL does not parse (its user or password holds a special character): "
    "percent-encode / as %2F, # as %23, ? as %3F, @ as %40, : as %3A and % as %25"
)


def normalize_postgres_url(value: Any) -> Any:
    """Accept ``postgres://`` and ``postgresql://``; add ``sslmode=require`` off-host.

    Heroku hands out ``postgres://`` URLs; libpq takes both schemes, SQLAlchemy-style
    consumers do not, so everything downstream sees ``postgresql://``.
    """
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"expected a postgresql:// or postgres:// URL, got {redact(value)!r}")
    if "@" in parts.path + parts.query + parts.fragment:
        raise ValueError(UNPARSED_USERINFO)
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:
        # urllib's message quotes the piece it could not read: part of a password
        raise ValueError(UNPARSED_USERINFO) from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if not host and "host" not in query:
        raise ValueError(f"URL {redact(value)!r} names no host")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"URL {redact(value)!r} has an invalid port")
    effective_host = host or query.get("host")
    if "sslmode" not in query and not is_local_host(effective_host):
        query["sslmode"] = "require"
    return urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), parts.fragment))


PostgresUrl = Annotated[SecretStr, BeforeValidator(normalize_postgres_url)]
"""A libpq URL; a secret because it usually carries the password."""


def _http_url(value: Any, *, secret: bool = False) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
        secret = True
    if not isinstance(value, str):
        return value
    shown = "" if secret else f", got {redact(value)!r}"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL{shown}")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(UNPARSED_USERINFO if "@" in value else "invalid port") from None
    return value


def _secret_http_url(value: Any) -> Any:
    """Never echoes the value: a webhook URL is a credential even when it does not parse."""
    return _http_url(value, secret=True)


HttpUrl = Annotated[str, BeforeValidator(_http_url)]
SecretHttpUrl = Annotated[SecretStr, BeforeValidator(_secret_http_url)]
"""An http(s) URL that is itself a credential (Slack webhooks, push endpoints)."""


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    m = re.fullmatch(r"\[(?P<v6>[^\]]+)\]:(?P<port>\d+)|(?P<host>[^:\[\]]*):(?P<port2>\d+)", value)
    if not m:
        raise ValueError(f"invalid listen address {value!r}; expected host:port, e.g. 0.0.0.0:9187")
    host = m["v6"] or m["host"] or "0.0.0.0"
    port = int(m["port"] or m["port2"])
    if not 0 <= port < 65536:
        raise ValueError(f"invalid port in listen address {value!r}")
    return host, port


def _listen(value: str) -> str:
    parse_listen(value)
    return value


ListenAddress = Annotated[str, AfterValidator(_listen)]

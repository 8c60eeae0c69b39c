"""The ``targets.redis`` section: Redis targets."""

from __future__ import annotations

from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import BeforeValidator, SecretStr, model_validator

from monitor.kernel.config.types import UNPARSED_USERINFO, Duration, Model, Name
from monitor.kernel.redact import redact

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(value: Any) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value
    parts = urlsplit(value)
    if parts.scheme not in _REDIS_SCHEMES:
        raise ValueError(f"expected a redis://, rediss:// or unix:// URL, got {redact(value)!r}")
    if parts.scheme != "unix" and "@" in parts.path + parts.query + parts.fragment:
        raise ValueError(UNPARSED_USERINFO)
    try:
        _ = parts.port
    except ValueError:
        # urllib's message quotes the piece it could not read: part of a password
        raise ValueError(UNPARSED_USERINFO) from None
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

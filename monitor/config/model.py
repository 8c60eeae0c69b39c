"""The root configuration object."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, model_validator

from alerts.receivers.config import ReceiverConfig
from alerts.routing import Route
from alerts.rules.config import RuleList
from alerts.silences import Silence
from alerts.statedb.config import StateConfig as StateConfig
from monitor.config.caches import MemcachedTarget, PgBouncerTarget, RedisTarget
from monitor.config.postgres import PostgresTarget
from monitor.config.types import Duration, ListenAddress, Model, SecretHttpUrl, parse_listen
from monitor.config.web import CruxConfig, HttpProbeTarget, PsiConfig, RumConfig


class HttpConfig(Model):
    """The daemon's own HTTP server (/metrics, /healthz, /alerts, /vitals)."""

    listen: ListenAddress = "0.0.0.0:9187"
    auth_token: SecretStr | None = None
    """Bearer token required on /metrics and /alerts when set."""
    username: str | None = None
    password: SecretStr | None = None
    """HTTP basic auth on /metrics and /alerts when both are set."""

    @model_validator(mode="after")
    def _basic_pair(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be set together for basic auth")
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_listen(self.listen)


_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_HEADERS = frozenset(
    {"authorization", "content-encoding", "content-type", "x-prometheus-remote-write-version"}
)


class RemoteWriteConfig(Model):
    """Push samples with the Prometheus remote_write protocol (worker dynos).

    See docs/deployment.md for every key; :mod:`monitor.remote_write` does the pushing.
    """

    url: SecretHttpUrl
    username: str | None = None
    password: SecretStr | None = None
    bearer_token: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Extra request headers, e.g. ``X-Scope-OrgID`` for a multi-tenant Mimir."""
    interval: Duration | None = None
    """How often to push; the top-level collection ``interval`` when unset."""
    timeout: Duration = 10.0
    labels: dict[str, str] = Field(default_factory=dict)
    """Added to every pushed series (``job`` and ``instance`` have defaults)."""
    max_queue_samples: int = Field(default=500_000, ge=1)
    """Samples held while the receiver is unreachable; the oldest go first past this."""
    max_samples_per_send: int = Field(default=5_000, ge=1)
    max_backoff: Duration = 5.0
    """Longest wait between retries (Prometheus' own remote_write default)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be set together for basic auth")
        if self.bearer_token is not None and self.username is not None:
            raise ValueError("use either bearer_token or username/password, not both")
        if self.max_queue_samples < self.max_samples_per_send:
            raise ValueError(
                f"max_queue_samples ({self.max_queue_samples}) must be at least "
                f"max_samples_per_send ({self.max_samples_per_send})"
            )
        for name in self.labels:
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise ValueError(f"labels: invalid label name {name!r}")
        for header in self.headers:
            if header.lower() in _RESERVED_HEADERS:
                raise ValueError(f"headers: {header!r} is set by the daemon itself")
        return self


class TargetsConfig(Model):
    postgres: tuple[PostgresTarget, ...] = ()
    pgbouncer: tuple[PgBouncerTarget, ...] = ()
    redis: tuple[RedisTarget, ...] = ()
    memcached: tuple[MemcachedTarget, ...] = ()
    crux: CruxConfig | None = None
    psi: PsiConfig | None = None
    http: tuple[HttpProbeTarget, ...] = ()
    rum: RumConfig | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        problems = []
        for kind in ("postgres", "pgbouncer", "redis", "memcached", "http"):
            seen: set[str] = set()
            for target in getattr(self, kind):
                if target.name in seen:
                    problems.append(f"targets.{kind}: duplicate target name {target.name!r}")
                seen.add(target.name)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Config(Model):
    """Everything the daemon needs, validated and frozen before anything starts."""

    interval: Duration = 15.0
    http: HttpConfig = Field(default_factory=HttpConfig)
    remote_write: RemoteWriteConfig | None = None
    state: StateConfig = Field(default_factory=StateConfig)
    targets: TargetsConfig = Field(default_factory=TargetsConfig)
    receivers: dict[str, ReceiverConfig] = Field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    silences: tuple[Silence, ...] = ()
    rules: RuleList = ()

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> Self:
        for i, route in enumerate(self.routes):
            for name in route.receivers:
                if name not in self.receivers:
                    raise ValueError(f"routes[{i}]: unknown receiver {name!r}")
        return self

    def secrets(self) -> Iterator[str]:
        """Every secret value in the configuration, for log redaction."""
        yield from _secrets_in(self)


def _secrets_in(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        yield secret
        if "://" in secret:
            with contextlib.suppress(ValueError):
                password = urlsplit(secret).password
                if password:
                    yield unquote(password)
    elif isinstance(value, Model):
        for name in type(value).model_fields:
            yield from _secrets_in(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secrets_in(item)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            yield from _secrets_in(item)

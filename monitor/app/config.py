"""The root configuration: every section, composed; loading from a file or the environment.

Each section's model lives beside the code it configures (``collectors/*/config.py``,
``monitor/kernel/http.py``, ...); this module only composes them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import Field, SecretStr, ValidationError, model_validator

from alerts.receivers.config import ReceiverConfig
from alerts.routing import Route
from alerts.rules.config import RuleList
from alerts.runtime_silences import DEFAULT_MAX_SILENCE
from alerts.silences import Silence
from alerts.statedb.config import StateConfig
from collectors.crux.config import CruxConfig
from collectors.deploys.config import DeploysConfig
from collectors.heroku_logs.config import LogDrainConfig
from collectors.http_probe.config import HttpProbeTarget
from collectors.memcached.config import MemcachedTarget
from collectors.pgbouncer.config import PgBouncerTarget
from collectors.postgres.config import PostgresTarget
from collectors.psi.config import PsiConfig
from collectors.queries.config import Queries, unknown_targets
from collectors.redis_cache.config import RedisTarget
from collectors.rum.config import RumConfig
from monitor.app.env_config import config_from_environment
from monitor.kernel.config.loading import (
    ConfigError,
    blank_to_none,
    expand_env,
    format_validation_error,
    register_raw_secrets,
)
from monitor.kernel.config.types import Duration, Model
from monitor.kernel.http import HttpConfig
from monitor.kernel.redact import redact, register_secrets
from monitor.kernel.remote_write.config import RemoteWriteConfig
from monitor.kernel.sharding import ShardConfig, ShardError, resolve_shard


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
    max_silence: Duration = DEFAULT_MAX_SILENCE
    """The longest runtime silence (``POST /silences``, ``monitor silence add``)."""
    log_drain: LogDrainConfig | None = None
    queries: Queries = ()
    """Custom SQL metrics (see collectors/queries/config.py)."""
    deploys: DeploysConfig | None = None
    """Deploy markers and release comparison (see collectors/deploys/config.py)."""
    shard: ShardConfig | None = None
    """This daemon's part of the targets (see monitor/kernel/sharding.py)."""

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> Self:
        for i, route in enumerate(self.routes):
            for name in route.receivers:
                if name not in self.receivers:
                    raise ValueError(f"routes[{i}]: unknown receiver {name!r}")
        return self

    @model_validator(mode="after")
    def _deploys_notify_receivers(self) -> Self:
        for name in self.deploys.notify if self.deploys else ():
            if name not in self.receivers:
                raise ValueError(f"deploys.notify: unknown receiver {name!r}")
        return self

    @model_validator(mode="after")
    def _queries_name_targets(self) -> Self:
        problems = unknown_targets(self.queries, (t.name for t in self.targets.postgres))
        if problems:
            raise ValueError("; ".join(problems))
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


def validate(
    raw: Any, environ: Mapping[str, str] | None = None, source: str = "", *, expand: bool = True
) -> Config:
    """Expand ``${VAR}`` (unless ``expand`` is false) and validate a parsed document."""
    environ = os.environ if environ is None else environ
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{source or '<config>'}: expected a mapping at the top level"])
    problems: list[str] = []
    if expand:
        raw = expand_env(raw, environ, "", problems)
    register_raw_secrets(raw)
    expanded = blank_to_none(raw, every_blank=not expand)
    if problems:
        raise ConfigError(problems)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    register_secrets(config.secrets())
    try:
        resolve_shard(config.shard, environ)
    except ShardError as exc:
        raise ConfigError([f"shard: {exc}"]) from None
    return config


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The configuration from ``path``, ``$MONITOR_CONFIG``, or the environment alone."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get("MONITOR_CONFIG") or None
    if path is None:
        return validate(config_from_environment(environ), expand=False)
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read configuration file: {exc.strerror}"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {redact(str(problem))}"]) from None
    return validate(raw, environ, source=str(file))

"""``log_drain``: the Heroku log drain endpoint (``POST /logs``, ``POST /logs/{app}``)."""

from __future__ import annotations

import re
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from monitor.kernel.config.types import Duration, Model, Name

_ROUTE = re.compile(r"^/[^\s?#]*$")
_GLOB = re.compile(r"^[A-Za-z0-9_.*\-]+$")


class L2metConfig(Model):
    """App metrics written in the l2met convention (``count#``, ``sample#``, ``measure#``)."""

    enabled: bool = True
    allow: tuple[str, ...] = ()
    """Metric name globs (``db.*``, ``jobs.duration``); empty: any name, up to ``max_metrics``."""
    max_metrics: int = Field(default=200, ge=0)
    """Distinct (app, kind, name, unit) series kept; later new names are dropped and counted."""

    @field_validator("allow")
    @classmethod
    def _globs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for glob in value:
            if not _GLOB.match(glob):
                raise ValueError(f"invalid metric name pattern {glob!r}")
        return value


class LogDrainConfig(Model):
    """See docs/heroku-log-drains.md. ``password`` and/or ``drain_tokens`` is the drain's
    own credential, separate from the metrics token; with neither, ``POST /logs`` answers
    403 and says how to enable it."""

    name: Name = "log_drain"
    """The ``target`` label of the drain's samples in the snapshot store."""
    password: SecretStr | None = None
    """Basic-auth password in the drain URL (``https://user:PASSWORD@host/logs/app``);
    any user name."""
    drain_tokens: tuple[str, ...] = ()
    """Allowed ``Logplex-Drain-Token`` values (``d.<uuid>``, from ``heroku drains``).
    With a password too, both must match; alone they are the credential (they are not
    secret to the app's collaborators: prefer the password)."""
    default_app: str | None = None
    """The ``app`` label when the URL names none (neither ``/logs/{app}`` nor ``?app=``)."""
    routes: tuple[str, ...] = ()
    """Path patterns for the ``route`` label (``/products/:id``, ``/docs/*``); the rest is
    ``other``. Raw paths never become labels."""
    max_apps: int = Field(default=20, ge=1)
    """Distinct apps accepted; frames for further apps are counted and dropped."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Larger bodies get 413 (Logplex batches aim at ~100 KiB)."""
    max_concurrent: int = Field(default=32, ge=1)
    """Requests being read at once before 429 + Retry-After (Logplex retries those)."""
    dedupe_window: Duration = 600.0
    """How long a ``Logplex-Frame-Id`` is remembered (Logplex retries within seconds)."""
    dedupe_max: int = Field(default=20_000, ge=1)
    """Frame ids remembered at most (oldest forgotten first)."""
    window: Duration = 300.0
    """The window of the rule series (5xx ratio, p95 service time, H12s, crashes, L10)."""
    min_requests: int = Field(default=20, ge=1)
    """Requests in the window before its 5xx ratio and p95 exist."""
    stale_after: Duration = 300.0
    """Gauges (dyno memory, add-on metrics) not refreshed for this long are dropped."""
    max_series: int = Field(default=20_000, ge=100)
    """Label sets kept over all drain metrics; new ones past this are dropped and counted."""
    l2met: L2metConfig = Field(default_factory=L2metConfig)

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for route in value:
            if not _ROUTE.match(route):
                raise ValueError(f"invalid route pattern {route!r}; expected /path/:param")
        return value

    @field_validator("drain_tokens")
    @classmethod
    def _tokens(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t for t in value if t)

    @field_validator("default_app")
    @classmethod
    def _app(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not APP_NAME.match(value):
            raise ValueError(f"invalid app name {value!r}")
        return value

    @model_validator(mode="after")
    def _password_not_empty(self) -> Self:
        if self.password is not None and not self.password.get_secret_value():
            object.__setattr__(self, "password", None)
        return self

    @property
    def has_credential(self) -> bool:
        return self.password is not None or bool(self.drain_tokens)


APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
"""Heroku app names are ``[a-z][a-z0-9-]{2,29}``; anything label-safe and short passes."""

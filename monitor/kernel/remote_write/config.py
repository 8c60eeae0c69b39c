"""The ``remote_write`` section: where and how to push samples."""

from __future__ import annotations

import re
from typing import Self

from pydantic import Field, SecretStr, model_validator

from monitor.kernel.config.types import Duration, Model, SecretHttpUrl

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

"""The ``targets.http`` section: HTTP probes and their SLOs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from monitor.kernel.config.types import Duration, HttpUrl, Model, Name


class ProbeSlo(Model):
    """An availability objective for one probe, with multi-window burn rates."""

    objective: float = Field(default=0.999, gt=0, lt=1)
    window: Duration = 2592000.0
    min_samples: int = Field(default=5, ge=1)
    """Fewest probe results a window needs before its burn rate is reported."""


class HttpProbeTarget(Model):
    """An HTTP uptime probe."""

    name: Name
    url: HttpUrl
    method: Literal["GET", "HEAD"] = "GET"
    interval: Duration | None = None
    timeout: Duration = 5.0
    max_redirects: int = Field(default=5, ge=0, le=30)
    """Redirects followed; 0 means the first answer is final."""
    expected_status: tuple[int, ...] = ()
    """Status codes that count as success; any 2xx when empty."""
    body_contains: str | None = None
    max_body_bytes: int = Field(default=1048576, ge=1)
    tls_verify: bool = True
    ca_file: str | None = None
    """PEM bundle to verify the server with instead of the system's."""
    slo: ProbeSlo | None = Field(default_factory=ProbeSlo)

    @field_validator("expected_status")
    @classmethod
    def _statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [s for s in value if not 100 <= s <= 599]
        if bad:
            raise ValueError(f"not HTTP status codes: {bad}")
        return value

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if self.body_contains is not None and self.method == "HEAD":
            raise ValueError("body_contains needs method GET (a HEAD answer has no body)")
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise ValueError(f"ca_file {self.ca_file!r} does not exist")
        return self

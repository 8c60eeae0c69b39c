"""The ``targets.crux`` section: Chrome UX Report API origins, URLs and form factors."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from collectors.web_vitals import (
    FormFactor,
    Origin,
    VitalsThresholds,
)
from monitor.kernel.config.types import Duration, HttpUrl, Model


class CruxConfig(Model):
    """Chrome UX Report API: field data per origin and URL, per form factor."""

    api_key: SecretStr
    origins: tuple[Origin, ...] = ()
    urls: tuple[HttpUrl, ...] = ()
    form_factors: tuple[FormFactor, ...] = ("PHONE", "DESKTOP")
    endpoint: HttpUrl = "https://chromeuxreport.googleapis.com/v1"
    interval: Duration = 3600.0
    """How often to ask; the data changes once a day, so once it changed today the
    daily job waits for the next UTC day."""
    timeout: Duration = 30.0
    """Deadline of one run (all form factors of one origin, retries included)."""
    request_timeout: Duration = 10.0
    max_retries: int = Field(default=3, ge=0, le=10)
    """Retries of a 429 answer within one run, with jittered exponential backoff."""
    history: bool = True
    """Also read the weekly History API series."""
    history_interval: Duration = 21600.0
    history_periods: int = Field(default=25, ge=1, le=40)
    compare_weeks: tuple[int, ...] = (1, 4)
    """p75 now against that many weekly periods ago (``crux_p75_change_ratio``)."""
    thresholds: VitalsThresholds = Field(default_factory=VitalsThresholds)

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if not self.origins and not self.urls:
            raise ValueError("give at least one origin or url")
        if self.interval < 600:
            raise ValueError("interval below 10m: CrUX data changes once a day")
        if not self.form_factors:
            raise ValueError("form_factors: give at least one of PHONE, DESKTOP, TABLET")
        if any(not 1 <= w < self.history_periods for w in self.compare_weeks):
            raise ValueError(f"compare_weeks must be between 1 and {self.history_periods - 1}")
        return self

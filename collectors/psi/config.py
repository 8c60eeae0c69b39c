"""The ``targets.psi`` section: PageSpeed Insights (Lighthouse lab runs)."""

from __future__ import annotations

from typing import Self

from pydantic import SecretStr, model_validator

from collectors.web_vitals import (
    Strategy,
)
from monitor.kernel.config.types import Duration, HttpUrl, Model


class PsiConfig(Model):
    """PageSpeed Insights v5: lab data, a few runs a day per URL and strategy."""

    api_key: SecretStr
    """Required: keyless calls share one quota with every other keyless caller."""
    urls: tuple[HttpUrl, ...]
    strategies: tuple[Strategy, ...] = ("mobile", "desktop")
    endpoint: HttpUrl = "https://www.googleapis.com/pagespeedonline/v5"
    interval: Duration = 21600.0
    timeout: Duration = 90.0

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if not self.urls:
            raise ValueError("urls: give at least one URL")
        if not self.strategies:
            raise ValueError("strategies: give mobile, desktop or both")
        if self.timeout < 60:
            raise ValueError("timeout below 60s: a Lighthouse run takes 10-40 s, often more")
        if self.interval < 1800:
            raise ValueError("interval below 30m: PSI runs are slow and quota-limited")
        return self

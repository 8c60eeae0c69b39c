"""Configuration of Core Web Vitals sources and HTTP probes."""

from __future__ import annotations

from pydantic import SecretStr

from monitor.config.types import Duration, HttpUrl, Model, Name


class CruxConfig(Model):
    """Chrome UX Report API: field data per origin and URL."""

    api_key: SecretStr
    origins: tuple[HttpUrl, ...] = ()
    urls: tuple[HttpUrl, ...] = ()
    endpoint: HttpUrl = "https://chromeuxreport.googleapis.com/v1"
    interval: Duration = 3600.0
    timeout: Duration = 30.0


class PsiConfig(Model):
    """PageSpeed Insights v5: lab data, a few runs a day per URL and strategy."""

    api_key: SecretStr | None = None
    urls: tuple[HttpUrl, ...] = ()
    endpoint: HttpUrl = "https://www.googleapis.com/pagespeedonline/v5"
    interval: Duration = 21600.0
    timeout: Duration = 90.0


class HttpProbeTarget(Model):
    """An HTTP uptime probe."""

    name: Name
    url: HttpUrl
    interval: Duration | None = None
    timeout: Duration = 5.0

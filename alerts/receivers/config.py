"""``receivers:``: the config model of each receiver kind, keyed by its ``type``.

Kept apart from the receivers' code (which needs the HTTP client and the check
interface) so that loading the configuration imports no receiver.
:mod:`alerts.receivers.registry` pairs each model with its receiver class.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, model_validator

from alerts.types import OptionalDuration, Severity
from monitor.kernel.config.types import Duration, HttpUrl, Model, SecretHttpUrl

PagerDutySeverity = Literal["critical", "error", "warning", "info"]


def _identity_severity() -> dict[Severity, PagerDutySeverity]:
    return {"critical": "critical", "warning": "warning", "info": "info"}


class HttpReceiverConfig(Model):
    """Settings every HTTP receiver has."""

    send_resolved: bool = True
    """Send a message when an alert resolves (on by default for every receiver)."""
    timeout: Duration = 10.0
    """Per-request timeout; a request that takes longer is retried."""
    min_interval: OptionalDuration = 0.0
    """Least time between two requests to this receiver."""


class PagerDutyConfig(HttpReceiverConfig):
    """PagerDuty Events API v2: one event per alert instance, resolved by ``dedup_key``."""

    type: Literal["pagerduty"]
    routing_key: SecretStr
    url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"
    severity_map: dict[Severity, PagerDutySeverity] = Field(default_factory=_identity_severity)
    client: str = "app-monitor"
    client_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _key(self) -> Self:
        key = self.routing_key.get_secret_value()
        if not key.strip():
            raise ValueError("routing_key is empty")
        return self


class SlackConfig(HttpReceiverConfig):
    """Slack incoming webhook: Block Kit messages, alerts firing together grouped."""

    type: Literal["slack"]
    webhook_url: SecretHttpUrl
    max_alerts: int = Field(default=20, ge=1, le=40)
    """Alerts listed in one message; the rest are counted as "...and N more"."""
    min_interval: OptionalDuration = 1.0
    """Least time between two messages: Slack allows one per second per webhook."""


class WebhookConfig(HttpReceiverConfig):
    """Generic JSON webhook: a batch of alerts per request."""

    type: Literal["webhook"]
    url: SecretHttpUrl
    bearer_token: SecretStr | None = None
    max_alerts: int = Field(default=100, ge=1, le=1000)
    format: Literal["monitor", "alertmanager"] = "monitor"
    """``monitor``: the daemon's own body (``version: "1"``); ``alertmanager``: the
    Alertmanager webhook v4 body, for tools that consume Alertmanager webhooks."""
    external_url: HttpUrl | None = None
    """``externalURL`` of the ``alertmanager`` format: where people reach this daemon."""


class AlertmanagerConfig(HttpReceiverConfig):
    """Alertmanager API v2: every alert posted to each instance, re-sent while it fires."""

    type: Literal["alertmanager"]
    urls: tuple[HttpUrl, ...] = Field(min_length=1)
    """Every instance of the cluster (their gossip does not share alerts)."""
    resend_interval: Duration = 60.0
    """Re-send a firing alert at least this often, whatever the route's
    ``repeat_interval``; keep it well under Alertmanager's ``resolve_timeout`` (5m)."""
    bearer_token: SecretStr | None = None
    generator_url: HttpUrl | None = None
    """``generatorURL`` of every alert (default: the rule's ``dashboard_url``)."""


class LogConfig(Model):
    """Writes alerts to the daemon's log; the receiver used when none is configured."""

    type: Literal["log"]
    send_resolved: bool = True


class HerokuRollbackConfig(HttpReceiverConfig):
    """Rolls an app back to its previous release on a critical ``ReleaseRegression``
    (Heroku Platform API). Made from ``deploys.rollback`` or configured by hand;
    see docs/deploys.md for the risks."""

    type: Literal["heroku_rollback"]
    api_key: SecretStr | None = None
    dry_run: bool = True
    within: Duration = 1800.0
    """Only for a regression detected this soon after the deploy."""
    api_url: HttpUrl = "https://api.heroku.com"
    send_resolved: bool = False

    @model_validator(mode="after")
    def _key_when_live(self) -> Self:
        if not self.dry_run and (self.api_key is None or not self.api_key.get_secret_value()):
            raise ValueError("dry_run: false needs api_key (HEROKU_API_KEY)")
        return self


ReceiverConfig = Annotated[
    PagerDutyConfig
    | SlackConfig
    | WebhookConfig
    | AlertmanagerConfig
    | LogConfig
    | HerokuRollbackConfig,
    Field(discriminator="type"),
]

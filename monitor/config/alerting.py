"""Configuration of receivers, routes, silences and rules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr

from monitor.config.types import Duration, HttpUrl, Model, SecretHttpUrl


class PagerDutyReceiver(Model):
    type: Literal["pagerduty"]
    routing_key: SecretStr
    url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"


class SlackReceiver(Model):
    type: Literal["slack"]
    webhook_url: SecretHttpUrl


class WebhookReceiver(Model):
    type: Literal["webhook"]
    url: SecretHttpUrl


class LogReceiver(Model):
    type: Literal["log"]


Receiver = Annotated[
    PagerDutyReceiver | SlackReceiver | WebhookReceiver | LogReceiver,
    Field(discriminator="type"),
]


class Route(Model):
    match: dict[str, str] = Field(default_factory=dict)
    receivers: tuple[str, ...]


class Silence(Model):
    match: dict[str, str] = Field(default_factory=dict)
    comment: str = ""


class RuleConfig(Model):
    name: str
    metric: str | None = None
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    threshold: float | None = None
    for_: Duration | None = Field(default=None, alias="for")
    severity: Literal["critical", "warning", "info"] = "warning"
    summary: str = ""
    enabled: bool = True

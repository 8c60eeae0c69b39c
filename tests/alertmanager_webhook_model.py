"""Alertmanager's webhook v4 body as documented (prometheus.io, "webhook_config"), as a
strict model: every documented field required, nothing else allowed. The tests check
the model against what a real Alertmanager sends, then hold the daemon's
``format: alertmanager`` body to it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["firing", "resolved"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class WebhookAlert(Strict):
    status: Status
    labels: dict[str, str]
    annotations: dict[str, str]
    startsAt: datetime
    endsAt: datetime
    generatorURL: str
    fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")


class WebhookMessage(Strict):
    version: Literal["4"]
    groupKey: str = Field(min_length=1)
    truncatedAlerts: int = Field(ge=0)
    status: Status
    receiver: str
    groupLabels: dict[str, str]
    commonLabels: dict[str, str]
    commonAnnotations: dict[str, str]
    externalURL: str
    alerts: list[WebhookAlert]

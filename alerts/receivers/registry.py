"""Receivers made from their config: a registry from ``type`` to config model and
receiver class, and :func:`build_receivers`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from alerts.receivers.alertmanager import AlertmanagerReceiver
from alerts.receivers.base import Outcome, Receiver, Result
from alerts.receivers.config import (
    AlertmanagerConfig,
    HerokuRollbackConfig,
    LogConfig,
    PagerDutyConfig,
    ReceiverConfig,
    SlackConfig,
    WebhookConfig,
)
from alerts.receivers.heroku_rollback import HerokuRollbackReceiver
from alerts.receivers.log import LogReceiver
from alerts.receivers.pagerduty import PagerDutyReceiver
from alerts.receivers.slack import SlackReceiver
from alerts.receivers.webhook import WebhookReceiver
from monitor import __version__

FALLBACK = "log"


@dataclass(frozen=True, slots=True)
class ReceiverKind:
    config: type[Any]
    build: Callable[[str, Any, httpx.AsyncClient], Receiver]


def _log(name: str, config: LogConfig, _: httpx.AsyncClient) -> Receiver:
    return LogReceiver(name, config.send_resolved)


KINDS: dict[str, ReceiverKind] = {
    "pagerduty": ReceiverKind(PagerDutyConfig, PagerDutyReceiver),
    "slack": ReceiverKind(SlackConfig, SlackReceiver),
    "webhook": ReceiverKind(WebhookConfig, WebhookReceiver),
    "alertmanager": ReceiverKind(AlertmanagerConfig, AlertmanagerReceiver),
    "log": ReceiverKind(LogConfig, _log),
    "heroku_rollback": ReceiverKind(HerokuRollbackConfig, HerokuRollbackReceiver),
}
"""Every receiver kind by its ``type``: its config model and how to make it."""


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        follow_redirects=False,
        headers={"User-Agent": f"app-monitor/{__version__}"},
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=5),
    )


def build_receivers(
    configs: Mapping[str, ReceiverConfig], client: httpx.AsyncClient
) -> tuple[dict[str, Receiver], str]:
    """Every configured receiver by name, and the name of the fallback log receiver
    (the first log receiver configured, else an implicit one added here)."""
    out: dict[str, Receiver] = {}
    fallback: str | None = None
    for name, rc in configs.items():
        kind = KINDS[rc.type]
        assert isinstance(rc, kind.config)
        out[name] = kind.build(name, rc, client)
        if rc.type == "log":
            fallback = fallback or name
    if fallback is None:
        fallback = FALLBACK
        while fallback in out:
            fallback = "_" + fallback
        out[fallback] = LogReceiver(fallback)
    for receiver in out.values():
        if isinstance(receiver, HerokuRollbackReceiver):
            receiver.tell(r for r in out.values() if not isinstance(r, HerokuRollbackReceiver))
    return out, fallback


__all__ = ["KINDS", "Outcome", "Receiver", "Result", "build_receivers", "http_client"]

"""Receivers: PagerDuty, Slack, generic webhook, log. :func:`build_receivers` makes them."""

from __future__ import annotations

import httpx

from alerts.receivers.base import Outcome, Receiver, Result
from alerts.receivers.log import LogReceiver
from alerts.receivers.pagerduty import PagerDutyReceiver
from alerts.receivers.slack import SlackReceiver
from alerts.receivers.webhook import WebhookReceiver
from monitor import __version__
from monitor.app.config import Config
from monitor.config.alerting import LogReceiver as LogConfig
from monitor.config.alerting import PagerDutyReceiver as PagerDutyConfig
from monitor.config.alerting import SlackReceiver as SlackConfig

FALLBACK = "log"


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        follow_redirects=False,
        headers={"User-Agent": f"app-monitor/{__version__}"},
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=5),
    )


def build_receivers(config: Config, client: httpx.AsyncClient) -> tuple[dict[str, Receiver], str]:
    """Every configured receiver by name, and the name of the fallback log receiver."""
    out: dict[str, Receiver] = {}
    fallback: str | None = None
    for name, rc in config.receivers.items():
        if isinstance(rc, PagerDutyConfig):
            out[name] = PagerDutyReceiver(name, rc, client)
        elif isinstance(rc, SlackConfig):
            out[name] = SlackReceiver(name, rc, client)
        elif isinstance(rc, LogConfig):
            out[name] = LogReceiver(name, rc.send_resolved)
            fallback = fallback or name
        else:
            out[name] = WebhookReceiver(name, rc, client)
    if fallback is None:
        fallback = FALLBACK
        while fallback in out:
            fallback = "_" + fallback
        out[fallback] = LogReceiver(fallback)
    return out, fallback


__all__ = ["Outcome", "Receiver", "Result", "build_receivers", "http_client"]

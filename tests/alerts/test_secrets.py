"""No routing key or webhook URL in any log line, error, metric, /alerts or check output."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

from alert_fakes import Answer, FakeReceiverServer, Harness
from conftest import make_config
from prometheus_client import CollectorRegistry, generate_latest

from alerts.service.metrics import AlertMetrics
from monitor.app.config import Config
from monitor.kernel.logging import configure_logging
from monitor.kernel.snapshot import gauge

SECRET_KEY = "S3CR3TR0UT1NGK3YS3CR3TR0UT1NGK3Y"
HOOK_SECRET = "hUnTeR2hUnTeR2hUnTeR2xx"
VALUE = gauge("test_value", "v")


async def test_secrets_never_leak(
    harness: Callable[[Config], Harness], pagerduty: FakeReceiverServer
) -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    config = make_config(
        receivers={
            # DNS failure
            "team": {
                "type": "slack",
                "webhook_url": f"https://hooks.invalid/services/T1/B1/{HOOK_SECRET}",
                "timeout": "2s",
            },
            # connection refused
            "other": {
                "type": "webhook",
                "url": f"http://127.0.0.1:1/hooks/{HOOK_SECRET}",
                "timeout": "2s",
            },
            # a timeout, then a permanent error
            "oncall": {
                "type": "pagerduty",
                "routing_key": SECRET_KEY,
                "url": pagerduty.url,
                "timeout": "200ms",
            },
        },
        rules=[{"name": "Hot", "metric": "test_value", "threshold": 1, "severity": "critical"}],
    )
    pagerduty.then(Answer(202, "{}", delay=1.0), Answer(400, json.dumps({"errors": [SECRET_KEY]})))
    h = harness(config)
    await h.open()
    await h.evaluate(h.view({("x", "y"): [VALUE(5, target="y")]}))
    await h.deliver()
    h.clock.advance(5)
    await h.deliver()
    details = [row.last_error or "" for row in h.engine.outbox.rows.values()]
    assert any("ConnectError" in d or "connect" in d.lower() for d in details), details
    assert h.engine.counters.notifications.get(("oncall", "permanent_error")) == 1
    registry = CollectorRegistry()
    registry.register(AlertMetrics(h.engine))
    exposition = generate_latest(registry).decode()
    checks = [await r.probe() for r in h.receivers.values()]
    everything = "\n".join(
        [
            stream.getvalue(),
            *details,
            exposition,
            json.dumps([c.detail for c in checks]),
            repr(list(h.engine.outbox.rows.values())),
            repr(list(h.engine.ledger.notifications.values())),
        ]
    )
    assert "receiver refused a notification permanently" in stream.getvalue()
    for secret in (SECRET_KEY, HOOK_SECRET, "/services/T1/B1/"):
        assert secret not in everything, secret

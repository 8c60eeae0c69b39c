"""Structured logs (JSON off a TTY, stdlib loggers included) and Sentry scrubbing."""

from __future__ import annotations

import io
import json
import logging

import structlog

from monitor.kernel.logging import choose_format, configure_logging
from monitor.kernel.redact import register_secret
from monitor.kernel.sentry import init_sentry, release_from_env, scrub_event


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_choice() -> None:
    assert choose_format(io.StringIO(), {}) == "json"
    assert choose_format(FakeTTY(), {}) == "console"
    assert choose_format(FakeTTY(), {"LOG_FORMAT": "json"}) == "json"
    assert choose_format(io.StringIO(), {"LOG_FORMAT": "console"}) == "console"


def test_json_lines_for_structlog_and_stdlib_with_secrets_masked() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    register_secret("hooks-secret-path-123")
    try:
        structlog.get_logger("monitor.test").warning(
            "delivery failed", url="https://hooks.slack.com/hooks-secret-path-123"
        )
        logging.getLogger("psycopg").warning("connection to postgresql://app:pw-leak-9@db/x failed")
        try:
            raise RuntimeError("boom with hooks-secret-path-123")
        except RuntimeError:
            structlog.get_logger("monitor.test").exception("oops")
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines[:2]] == [
        "delivery failed",
        "connection to postgresql://app:***@db/x failed",
    ]
    assert lines[0]["level"] == "warning" and lines[0]["logger"] == "monitor.test"
    assert lines[1]["logger"] == "psycopg"
    assert "timestamp" in lines[1]
    assert "Traceback" in lines[2]["exception"]
    text = stream.getvalue()
    assert "hooks-secret-path-123" not in text
    assert "pw-leak-9" not in text


def test_sentry_off_without_dsn() -> None:
    assert init_sentry({}) is False


def test_sentry_release_precedence() -> None:
    assert release_from_env({"SENTRY_RELEASE": "r1", "HEROKU_BUILD_COMMIT": "abc"}) == "r1"
    assert release_from_env({"HEROKU_BUILD_COMMIT": "abc"}) == "abc"
    assert release_from_env({"HEROKU_SLUG_COMMIT": "def"}) == "def"
    assert release_from_env({}).startswith("app-monitor@")


def test_sentry_event_scrubbed() -> None:
    register_secret("R0UTING-KEY-abcdef")
    event = {
        "message": "POST failed for R0UTING-KEY-abcdef",
        "exception": {"values": [{"value": "could not connect to postgres://u:dbpass77@h/d"}]},
        "breadcrumbs": {"values": [{"message": "redis://:redispw99@cache:6379"}]},
        "extra": {"dsn": "postgresql://x:extrapw55@h/d", "n": 3},
    }
    scrubbed = scrub_event(event, None)
    text = json.dumps(scrubbed)
    for secret in ("R0UTING-KEY-abcdef", "dbpass77", "redispw99", "extrapw55"):
        assert secret not in text
    assert scrubbed["extra"]["n"] == 3


def test_sentry_initialised_with_scrubber(monkeypatch: object) -> None:
    import sentry_sdk

    sent: list[object] = []

    class Transport(sentry_sdk.transport.Transport):
        def capture_envelope(self, envelope: object) -> None:
            sent.append(envelope)

    import monitor.kernel.sentry as ms

    original = sentry_sdk.init

    def init(**kwargs: object) -> object:
        kwargs["transport"] = Transport
        return original(**kwargs)

    monkeypatch.setattr(sentry_sdk, "init", init)  # type: ignore[attr-defined]
    register_secret("wh-secret-777")
    try:
        assert ms.init_sentry(
            {"SENTRY_DSN": "https://key@o1.ingest.sentry.io/1", "SENTRY_RELEASE": "rel-1"}
        )
        sentry_sdk.capture_message("failed to post to wh-secret-777 via postgres://a:bpw123@h/d")
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # back to a disabled client
    assert sent
    body = b"".join(item.payload.get_bytes() for env in sent for item in env.items)  # type: ignore[attr-defined]
    assert b"rel-1" in body
    assert b"wh-secret-777" not in body and b"bpw123" not in body

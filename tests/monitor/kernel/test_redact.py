from __future__ import annotations

from monitor.kernel.redact import redact, register_secret


def test_url_credentials_are_masked() -> None:
    assert (
        redact("postgres://app:hunter2@db:5432/x failed") == "postgres://app:***@db:5432/x failed"
    )
    assert redact("rediss://:pw123@h:6380") == "rediss://:***@h:6380"


def test_conninfo_and_query_string_secrets() -> None:
    assert redact("host=db password=hunter2 user=x") == "host=db password=*** user=x"
    assert redact("GET /v1/records?key=AIzaSyABC&x=1") == "GET /v1/records?key=***&x=1"


def test_registered_secrets_masked_anywhere() -> None:
    register_secret("https://hooks.slack.com/services/T0/B0/XYZ")
    register_secret("R0UTINGKEY")
    text = "POST https://hooks.slack.com/services/T0/B0/XYZ with R0UTINGKEY failed"
    assert redact(text) == "POST *** with *** failed"


def test_percent_encoded_form_is_masked_too() -> None:
    register_secret("p@ss word")
    assert "p%40ss%20word" not in redact("url=postgres://u:p%40ss%20word@h/d")
    assert "p@ss word" not in redact("password is p@ss word")


def test_short_values_are_not_registered() -> None:
    register_secret("ab")
    assert redact("abc") == "abc"


def test_authorization_header_value() -> None:
    assert redact("Authorization: Bearer abcdef123456") == "Authorization: Bearer ***"

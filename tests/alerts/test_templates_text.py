"""Templates (sandboxed, with fallbacks) and Slack-safe text truncation."""

from __future__ import annotations

import pytest

from alerts import templates
from alerts.text import escape, safe_cut, truncate


def ctx(**labels: str) -> dict[str, object]:
    return templates.context(
        rule="PgDown", severity="critical", labels=labels, value=0.934, threshold=0.9
    )


def test_filters_and_labels() -> None:
    text = templates.render(
        "{{ target }} {{ value | percent }} {{ 90 | duration }} {{ 16777216 | bytes }}",
        ctx(target="primary"),
    )
    assert text == "primary 93% 1m30s 16.0 MiB"


def test_missing_label_and_value_render_a_placeholder() -> None:
    context = templates.context(rule="R", severity="warning", labels={}, value=None)
    text = templates.render(
        "{{ labels.standby }} {{ labels['x'] }} {{ value | percent }} {{ nothing.deep }}", context
    )
    assert text == "? ? ? ?"


def test_a_template_that_raises_falls_back() -> None:
    context = templates.context(rule="R", severity="warning", labels={"a": "b"}, value=None)
    text = templates.render("{{ value * 100 }}", context)
    assert text == "R (warning) {a=b}: value ?"


def test_the_sandbox_refuses_internals() -> None:
    context = ctx(target="x")
    text = templates.render("{{ ''.__class__.__mro__[1].__subclasses__() }}", context)
    assert "subclasses" not in text and "class" not in text
    assert text.startswith("PgDown (critical)")
    assert templates.render("{{ ''.__class__.__mro__ }}", context) == "?"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abcdef", 10, "abcdef"),
        ("abcdef", 4, "abc…"),
        ("ab👍🏽cd", 4, "ab…"),  # thumbs up + skin tone kept whole
        ("a👩‍👩‍👧z", 5, "a…"),  # ZWJ family not split
        ("e\u0301e\u0301e\u0301", 4, "e\u0301…"),  # combining accents stay on their letter
        ("x🇫🇷🇩🇪", 4, "x🇫🇷…"),  # flags are pairs of regional indicators
        ("x🇫🇷🇩🇪", 3, "x…"),
        ("漢字かな交じり", 4, "漢字か…"),
    ],
)
def test_truncate_on_grapheme_boundaries(text: str, limit: int, expected: str) -> None:
    result = truncate(text, limit)
    assert result == expected
    assert len(result) <= limit


def test_truncation_never_cuts_an_entity() -> None:
    escaped = escape("a<b>c&d" * 3)
    for limit in range(2, len(escaped)):
        out = truncate(escaped, limit)
        assert len(out) <= limit
        body = out.removesuffix("…")
        assert body == escaped[: safe_cut(escaped, len(body))]
        last_amp = body.rfind("&")
        assert last_amp == -1 or ";" in body[last_amp:], out


def test_escape() -> None:
    assert escape("<!channel> & <@U123|x>") == "&lt;!channel&gt; &amp; &lt;@U123|x&gt;"


def test_links_are_templated_with_labels_and_must_render_to_urls() -> None:
    from alerts.templates import render_link
    from monitor.app.config import validate
    from monitor.kernel.config.loading import ConfigError

    link = "https://grafana.example/d/pg?var-target={{ labels.target | urlencode }}"
    config = validate(
        {
            "rules": [
                {
                    "name": "PgDown",
                    "runbook_url": "https://runbooks.example/{{ labels.alertname }}",
                    "dashboard_url": link,
                }
            ]
        },
        environ={},
    )
    (rule,) = config.rules
    ctx = {"labels": {"target": "db 1/eu", "alertname": "PgDown"}}
    assert render_link(rule.dashboard_url, ctx) == (
        "https://grafana.example/d/pg?var-target=db%201/eu"
    )
    assert render_link(rule.runbook_url, ctx) == "https://runbooks.example/PgDown"
    # a label that breaks the URL (a space, unencoded): the link is left out, not sent broken
    assert render_link("https://x.example/{{ labels.target }}", ctx) is None
    for bad in ("{{ labels.target }}", "runbooks/pg", "ftp://x.example/", "https://x/{{ oops"):
        with pytest.raises(ConfigError, match="runbook_url"):
            validate({"rules": [{"name": "PgDown", "runbook_url": bad}]}, environ={})

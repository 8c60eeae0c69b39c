"""Validated value types shared by the alerting config models (rules, routes, silences,
receivers): severities, metric and label names, matchers, templates, durations."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import AfterValidator, BeforeValidator

from monitor.kernel.durations import parse_duration

Severity = Literal["critical", "warning", "info"]
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]

_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _duration_or_zero(value: Any) -> float:
    if isinstance(value, int | float):  # bool is an int too
        raise ValueError(f"a duration needs a unit: write '{value}s' (or ms, m, h)")
    return parse_duration(value)


OptionalDuration = Annotated[float, BeforeValidator(_duration_or_zero)]
"""Like :data:`~monitor.kernel.config.types.Duration` but ``0s`` is allowed (no wait)."""


def _metric_name(value: str) -> str:
    if not _METRIC.match(value):
        raise ValueError(f"invalid metric name {value!r}")
    return value


MetricName = Annotated[str, AfterValidator(_metric_name)]


def _labels(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not _LABEL.match(name):
            raise ValueError(f"invalid label name {name!r}")
    return value


def _regexes(value: dict[str, str]) -> dict[str, str]:
    _labels(value)
    for name, pattern in value.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"match_re.{name}: invalid regular expression: {exc}") from None
    return value


LabelMatch = Annotated[dict[str, str], AfterValidator(_labels)]
LabelRegexMatch = Annotated[dict[str, str], AfterValidator(_regexes)]

_TEMPLATE_CHECK = ImmutableSandboxedEnvironment()


def _template(value: str) -> str:
    try:
        _TEMPLATE_CHECK.parse(value)
    except TemplateSyntaxError as exc:
        raise ValueError(f"invalid template (line {exc.lineno}): {exc.message}") from None
    return value


Template = Annotated[str, AfterValidator(_template)]


class _AnyLabel(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "x"


def _link_template(value: str) -> str:
    """A URL template must parse and, with every label set, render to an http(s) URL."""
    _template(value)
    try:
        text = _TEMPLATE_CHECK.from_string(value).render(
            labels=_AnyLabel(), value=1.0, threshold=1.0, rule="Rule", severity="warning"
        )
    except Exception as exc:
        raise ValueError(f"cannot render: {type(exc).__name__}: {exc}") from None
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"renders to {text.strip()[:80]!r}, not an http:// or https:// URL")
    return value


LinkTemplate = Annotated[str, AfterValidator(_link_template)]
"""A URL template (``runbook_url``, ``dashboard_url``) rendered with the alert's labels."""
"""A Jinja2 template, rendered in a sandbox with ``labels``, ``value``, ``threshold``."""

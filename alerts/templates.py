"""Summary and description templates: Jinja2 in a sandbox, never failing a notification.

Templates see ``labels`` (a missing label renders as ``?``), ``value`` (``None`` when there
is none), ``threshold``, ``clear``, ``rule``, ``severity``, ``metric`` and ``target``, and
the filters ``percent`` (0.93 -> 93%), ``duration`` (90 -> 1m30s), ``bytes``
(16777216 -> 16 MiB) and ``number`` (3 significant digits). When rendering raises
anyway, the text falls back to a plain description of the rule and the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import structlog
from jinja2 import ChainableUndefined, Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from monitor.kernel.durations import format_duration

log = structlog.get_logger("alerts.templates")

MISSING = "?"
MAX_RENDERED = 10_000
"""Rendered text is cut here; receivers apply their own, smaller limits."""


class _Missing(ChainableUndefined):
    """An undefined name or label: renders as ``?`` and survives attribute access."""

    def __str__(self) -> str:
        return MISSING

    def __format__(self, spec: str) -> str:
        return MISSING


def _bad(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, _Missing)
        or (isinstance(value, float) and not math.isfinite(value))
    )


def as_float(value: Any) -> float | None:
    if _bad(value):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def percent(value: Any, digits: int = 0) -> str:
    number = as_float(value)
    return MISSING if number is None else f"{number * 100:.{digits}f}%"


def duration(value: Any) -> str:
    number = as_float(value)
    if number is None:
        return MISSING
    return format_duration(number) if number >= 0 else "-" + format_duration(-number)


def size(value: Any) -> str:
    number = as_float(value)
    if number is None:
        return MISSING
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(number) < 1024 or unit == "TiB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    raise AssertionError("unreachable")


def number(value: Any) -> str:
    parsed = as_float(value)
    if parsed is None:
        return MISSING
    return f"{parsed:.3g}"


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=_Missing, autoescape=False)
    env.filters.update(percent=percent, duration=duration, bytes=size, number=number)
    return env


@lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    return environment().from_string(source)


class _LabelDict(dict[str, str]):
    """Labels for templates: ``labels.missing`` and ``labels['missing']`` render ``?``."""

    def __missing__(self, key: str) -> Any:
        return _Missing(name=key)


def context(
    *,
    rule: str,
    severity: str,
    labels: Mapping[str, str],
    value: float | None,
    metric: str | None = None,
    threshold: float | None = None,
    clear: float | None = None,
) -> dict[str, Any]:
    return {
        "rule": rule,
        "severity": severity,
        "labels": _LabelDict(labels),
        "target": labels.get("target", MISSING),
        "value": value if value is None or math.isfinite(value) else None,
        "metric": metric or MISSING,
        "threshold": threshold,
        "clear": clear,
    }


def fallback_text(ctx: Mapping[str, Any]) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(ctx["labels"].items()))
    shown = number(ctx.get("value"))
    return f"{ctx['rule']} ({ctx['severity']}) {{{labels}}}: value {shown}"


def render(source: str, ctx: Mapping[str, Any]) -> str:
    """Render ``source``; on any error, log once and return :func:`fallback_text`."""
    if not source:
        return ""
    try:
        text = compile_template(source).render(ctx)
    except Exception as exc:
        _warn_once(source, f"{type(exc).__name__}: {exc}")
        return fallback_text(ctx)
    return text[:MAX_RENDERED].strip()


_warned: set[str] = set()


def _warn_once(source: str, error: str) -> None:
    if source in _warned:
        return
    _warned.add(source)
    log.warning("alert template failed; using the fallback text", template=source, error=error)


def is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in text


def render_link(source: str | None, ctx: Mapping[str, Any]) -> str | None:
    """A ``runbook_url``/``dashboard_url`` template rendered with the alert's labels;
    None (and a warning, once) when the result is not an http(s) URL: a receiver never
    gets a broken link. Use ``{{ labels.target | urlencode }}`` in a query string."""
    if not source:
        return None
    try:
        text = compile_template(source).render(ctx).strip()
    except Exception as exc:
        _warn_once(source, f"{type(exc).__name__}: {exc}")
        return None
    if not is_http_url(text):
        _warn_once(source, f"renders to {text[:80]!r}, not an http(s) URL")
        return None
    return text


def check(source: str, ctx: Mapping[str, Any]) -> str | None:
    """The error rendering ``source`` with ``ctx`` would raise, or None (``monitor check``)."""
    try:
        compile_template(source).render(ctx)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None

"""``key=value`` fields as Heroku writes them: values may be quoted (with spaces, ``=``
and ``&`` inside), empty (``connect=``), or carry a unit (``87ms``, ``301.17MB``,
``15405636.0kB``)."""

from __future__ import annotations

import re

KV = re.compile(r'([\w#.\-]+)=("[^"]*"|\S*)')
"""One field; a quoted value runs to the next double quote."""
_NUMBER = re.compile(r"^(-?\d+(?:\.\d+)?)([A-Za-z]*)$")

UNIT_FACTORS: dict[str, tuple[float, str]] = {
    "": (1.0, ""),
    "bytes": (1.0, "bytes"),
    "B": (1.0, "bytes"),
    "kB": (1024.0, "bytes"),
    "KB": (1024.0, "bytes"),
    "MB": (1024.0**2, "bytes"),
    "GB": (1024.0**3, "bytes"),
    "TB": (1024.0**4, "bytes"),
    "pages": (1.0, ""),
    "us": (1e-6, "seconds"),
    "ms": (1e-3, "seconds"),
    "s": (1.0, "seconds"),
    "sec": (1.0, "seconds"),
    "m": (60.0, "seconds"),
    "h": (3600.0, "seconds"),
}
"""Unit suffix -> (factor to the base unit, base unit). Heroku's ``MB`` and ``kB`` are
binary (MiB, KiB): a ``512.00MB`` quota is a 512 MiB dyno."""


def fields(message: str) -> dict[str, str]:
    """Every ``key=value`` in ``message``; quotes are kept (see :func:`unquote`)."""
    return dict(KV.findall(message))


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def number(value: str) -> tuple[float, str] | None:
    """``"301.17MB"`` -> ``(301.17, "MB")``; None for anything else (``""``, ``1e5``)."""
    m = _NUMBER.match(value)
    if m is None:
        return None
    return float(m[1]), m[2]


def in_base_unit(value: str) -> tuple[float, str] | None:
    """``"301.17MB"`` -> ``(315_800_000.0-ish, "bytes")``; None if unparsable or the unit
    is unknown."""
    parsed = number(value)
    if parsed is None:
        return None
    conversion = UNIT_FACTORS.get(parsed[1])
    if conversion is None:
        return None
    return parsed[0] * conversion[0], conversion[1]


def milliseconds(value: str) -> float | None:
    """Router ``connect``/``service`` (``87ms``) in seconds; None when empty."""
    if value.endswith("ms"):
        try:
            return float(value[:-2]) / 1000.0
        except ValueError:
            return None
    return None

"""Durations written as ``500ms``, ``15s``, ``5m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError naming what was wrong.

    >>> parse_duration("1m30s")
    90.0
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string such as '15s' or '5m', got {text!r}")
    s = text.strip()
    if not s:
        raise ValueError("empty duration; use e.g. '15s', '5m' or '1h'")
    pos = 0
    total = 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m[1]) * _UNITS[m[2]]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(
            f"invalid duration {text!r}; use a number with a unit (ms, s, m, h, d, w), "
            "e.g. '15s', '5m', '1h30m'"
        )
    return total


def format_duration(seconds: float) -> str:
    """The shortest readable form: 90 -> '1m30s', 0.5 -> '500ms'."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out = []
    rest = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, rest = divmod(rest, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"

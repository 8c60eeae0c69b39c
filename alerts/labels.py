"""Label sets, matchers, and the stable keys derived from them.

An alert instance is one rule plus one label set. Its key (``instance_key``) and its
PagerDuty ``dedup_key`` are pure functions of the rule name and the labels, so they are
the same across restarts and hosts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]
"""Sorted (name, value) pairs."""

DEDUP_KEY_MAX = 255
"""PagerDuty Events v2 limit on ``dedup_key``."""


def freeze(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def instance_key(rule: str, labels: Labels) -> str:
    """Unique, stable identity of an alert instance (rule + label set)."""
    return rule + "{" + ",".join(f"{k}={v!r}" for k, v in labels) + "}"


def dedup_key(rule: str, labels: Labels) -> str:
    """The PagerDuty ``dedup_key``: readable when short, hashed when it would not fit.

    Label names and values are escaped (``\\`` ``,`` ``=`` get a backslash), so
    ``{a: "x,b=y"}`` and ``{a: "x", b: "y"}`` get different keys; a label set without
    those characters keeps the key it always had.

    >>> dedup_key("PgDown", (("target", "primary"),))
    'app-monitor/PgDown/target=primary'
    >>> dedup_key("R", (("a", "x,b=y"),))
    'app-monitor/R/a=x\\\\,b\\\\=y'
    """
    readable = f"app-monitor/{rule}/" + ",".join(
        f"{_escape_part(k)}={_escape_part(v)}" for k, v in labels
    )
    if len(readable) <= DEDUP_KEY_MAX and readable.isascii() and readable.isprintable():
        return readable
    digest = hashlib.sha256(instance_key(rule, labels).encode()).hexdigest()
    return f"app-monitor/{rule[:100]}/sha256:{digest}"


def _escape_part(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


@dataclass(frozen=True, slots=True)
class Matcher:
    """Equality and regular-expression (fully anchored) label matchers.

    A matcher on a label the set does not have compares against the empty string, as in
    Prometheus: ``match: {standby: ""}`` selects series without a ``standby`` label.
    """

    equal: tuple[tuple[str, str], ...] = ()
    regex: tuple[tuple[str, re.Pattern[str]], ...] = ()

    @classmethod
    def build(cls, equal: Mapping[str, str], regex: Mapping[str, str]) -> Matcher:
        return cls(
            tuple(sorted(equal.items())),
            tuple((k, re.compile(v)) for k, v in sorted(regex.items())),
        )

    @property
    def empty(self) -> bool:
        return not self.equal and not self.regex

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.equal) + tuple(k for k, _ in self.regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        for name, value in self.equal:
            if labels.get(name, "") != value:
                return False
        for name, pattern in self.regex:
            if pattern.fullmatch(labels.get(name, "")) is None:
                return False
        return True

    def compile_for(self, label_names: tuple[str, ...]) -> PositionalMatcher:
        """The same matcher for series whose labels come as values in ``label_names`` order."""
        return PositionalMatcher(
            tuple((_position(label_names, k), v) for k, v in self.equal),
            tuple((_position(label_names, k), p) for k, p in self.regex),
        )


def _position(names: tuple[str, ...], name: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        return -1


@dataclass(frozen=True, slots=True)
class PositionalMatcher:
    """A :class:`Matcher` specialised to one metric's label order (no dicts per series)."""

    equal: tuple[tuple[int, str], ...]
    regex: tuple[tuple[int, re.Pattern[str]], ...]

    def matches(self, values: tuple[str, ...]) -> bool:
        for pos, want in self.equal:
            if (values[pos] if pos >= 0 else "") != want:
                return False
        for pos, pattern in self.regex:
            if pattern.fullmatch(values[pos] if pos >= 0 else "") is None:
                return False
        return True

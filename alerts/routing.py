"""Which receivers an alert goes to, and with which grouping and repeat settings.

Routes are tried in order; the first whose matchers fit the alert's labels (which
include ``alertname`` and ``severity``) wins, unless it says ``continue: true``. With no
routes configured every receiver gets every alert; an alert no route matches goes to
the fallback (log) receiver, so nothing is silently dropped. ``MonitorReceiverBroken``
is the exception: it goes to every receiver except the broken one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import Field

from alerts.labels import Matcher
from alerts.rules.builtin import RECEIVER_BROKEN
from alerts.types import LabelMatch, LabelRegexMatch, OptionalDuration
from monitor.kernel.config.types import Duration, Model

DEFAULT_REPEAT = 4 * 3600.0


class Route(Model):
    """Alerts whose labels match go to ``receivers``; the first matching route wins
    unless it says ``continue: true``. Labels include ``alertname`` and ``severity``."""

    match: LabelMatch = Field(default_factory=dict)
    match_re: LabelRegexMatch = Field(default_factory=dict)
    receivers: tuple[str, ...] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue")
    group_by: tuple[str, ...] = ()
    """Labels that split one receiver's alerts into separate messages (default: none)."""
    group_wait: OptionalDuration = 0.0
    """Hold a new alert this long so that others firing just after share its message."""
    repeat_interval: Duration | None = 4 * 3600.0
    """Notify again while an alert keeps firing; ``null`` never repeats."""


@dataclass(frozen=True, slots=True)
class RouteTarget:
    receiver: str
    group_by: tuple[str, ...] = ()
    group_wait: float = 0.0
    repeat_interval: float | None = DEFAULT_REPEAT


class Router:
    def __init__(self, routes: Sequence[Route], receivers: Sequence[str], fallback: str) -> None:
        self._routes = [(Matcher.build(r.match, r.match_re), r) for r in routes]
        self._receivers = list(receivers) or [fallback]
        self._fallback = fallback

    def route(self, labels: Mapping[str, str]) -> list[RouteTarget]:
        if labels.get("alertname") == RECEIVER_BROKEN:
            broken = labels.get("receiver")
            others = [r for r in self._receivers if r != broken] or [self._fallback]
            return [RouteTarget(r) for r in others]
        if not self._routes:
            return [RouteTarget(r) for r in self._receivers]
        out: dict[str, RouteTarget] = {}
        for matcher, route in self._routes:
            if not matcher.matches(labels):
                continue
            for name in route.receivers:
                out.setdefault(
                    name,
                    RouteTarget(name, route.group_by, route.group_wait, route.repeat_interval),
                )
            if not route.continue_:
                break
        return list(out.values()) or [RouteTarget(self._fallback)]

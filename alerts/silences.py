"""Silences: label matchers muted between a start and an end, or in a weekly window.

Recurring windows are evaluated in their own time zone from the wall clock, so a window
``02:00-04:00 Europe/Paris`` follows daylight-saving changes (on the night the clocks
jump forward it lasts one hour of real time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from alerts.labels import Matcher
from monitor.config.alerting import WEEKDAYS, Recurrence, Silence


def _minutes(text: str) -> float:
    if text == "24:00":
        return 24 * 60.0
    parsed = time.fromisoformat(text)
    return parsed.hour * 60 + parsed.minute + parsed.second / 60


@dataclass(frozen=True, slots=True)
class Window:
    days: frozenset[int]
    start: float
    end: float
    zone: ZoneInfo

    @classmethod
    def build(cls, recurrence: Recurrence) -> Window:
        return cls(
            frozenset(WEEKDAYS.index(d) for d in recurrence.days),
            _minutes(recurrence.start),
            _minutes(recurrence.end),
            ZoneInfo(recurrence.time_zone),
        )

    def contains(self, wall: float) -> bool:
        local = datetime.fromtimestamp(wall, self.zone)
        minute = local.hour * 60 + local.minute + local.second / 60
        day = local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        # crosses midnight: belongs to the day it starts on
        return (day in self.days and minute >= self.start) or (
            (day - 1) % 7 in self.days and minute < self.end
        )


@dataclass(frozen=True, slots=True)
class ActiveSilence:
    matcher: Matcher
    start: float | None
    end: float | None
    window: Window | None
    comment: str

    def active(self, wall: float) -> bool:
        if self.start is not None and wall < self.start:
            return False
        if self.end is not None and wall >= self.end:
            return False
        return self.window is None or self.window.contains(wall)


class Silences:
    def __init__(self, silences: Sequence[Silence]) -> None:
        self._silences = [
            ActiveSilence(
                Matcher.build(s.match, s.match_re),
                s.start.timestamp() if s.start else None,
                s.end.timestamp() if s.end else None,
                Window.build(s.recurring) if s.recurring else None,
                s.comment,
            )
            for s in silences
        ]

    def silencing(self, labels: Mapping[str, str], wall: float) -> ActiveSilence | None:
        """The first silence muting ``labels`` at ``wall``, or None."""
        for silence in self._silences:
            if silence.active(wall) and silence.matcher.matches(labels):
                return silence
        return None

    def __len__(self) -> int:
        return len(self._silences)

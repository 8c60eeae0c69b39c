"""Silences: label matchers muted between a start and an end, or in a weekly window.

Recurring windows are evaluated in their own time zone from the wall clock, so a window
``02:00-04:00 Europe/Paris`` follows daylight-saving changes (on the night the clocks
jump forward it lasts one hour of real time).

Config silences come from the configuration file; runtime silences (``POST /silences``,
``monitor silence add``) from the state database, replaced by :meth:`Silences.set_runtime`
whenever the daemon re-reads them. Both are checked the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, model_validator

from alerts.labels import Matcher
from alerts.statedb.records import SilenceRow
from alerts.types import LabelMatch, LabelRegexMatch
from monitor.kernel.config.types import Model

CONFIG = "config"
RUNTIME = "runtime"

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# ------------------------------------------------------------------ config (``silences:``)


def _hhmm(value: str) -> str:
    if value == "24:00":
        return value
    try:
        time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected a time of day as HH:MM, got {value!r}") from None
    return value


TimeOfDay = Annotated[str, AfterValidator(_hhmm)]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)"
        ) from None
    return value


TimeZone = Annotated[str, AfterValidator(_zone)]


class Recurrence(Model):
    """A weekly maintenance window in local time: ``days`` at ``start``..``end``.

    ``end`` earlier than ``start`` crosses midnight (the window belongs to the day it
    starts on). Local time follows the zone's daylight-saving rules.
    """

    days: tuple[Weekday, ...] = WEEKDAYS
    start: TimeOfDay
    end: TimeOfDay
    time_zone: TimeZone = "UTC"

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end are the same time; the window would be empty")
        if not self.days:
            raise ValueError("days is empty")
        return self


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(
            "give the time zone, e.g. 2026-01-01T02:00:00Z or 2026-01-01T02:00:00+01:00"
        )
    return value


AwareDatetime = Annotated[datetime | None, AfterValidator(_aware)]


class Silence(Model):
    """Mutes matching alerts between ``start`` and ``end`` and/or in a weekly window.

    Silences stop triggers and repeats (checked again before every delivery attempt);
    an alert that was already notified still gets its resolve.
    """

    match: LabelMatch = Field(default_factory=dict)
    match_re: LabelRegexMatch = Field(default_factory=dict)
    start: AwareDatetime = None
    end: AwareDatetime = None
    recurring: Recurrence | None = None
    comment: str = ""

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.end is None and self.recurring is None:
            raise ValueError(
                "a silence needs an `end` or a `recurring` window "
                "(to turn a rule off for good, set `enabled: false` on it)"
            )
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end is not after start")
        return self


# ------------------------------------------------------------------ silences in force


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
    id: str = ""
    source: str = CONFIG
    match: Mapping[str, str] = field(default_factory=dict)
    match_re: Mapping[str, str] = field(default_factory=dict)
    created_by: str | None = None
    recurring: Recurrence | None = None

    @classmethod
    def of_row(cls, row: SilenceRow) -> ActiveSilence:
        match = {str(k): str(v) for k, v in json.loads(row.matchers).items()}
        match_re = {str(k): str(v) for k, v in json.loads(row.matchers_re).items()}
        return cls(
            Matcher.build(match, match_re),
            row.starts_at,
            row.ends_at,
            None,
            row.comment,
            id=row.id,
            source=RUNTIME,
            match=match,
            match_re=match_re,
            created_by=row.created_by,
        )

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
                id=f"config-{index}",
                match=dict(s.match),
                match_re=dict(s.match_re),
                recurring=s.recurring,
            )
            for index, s in enumerate(silences)
        ]
        self._runtime: list[ActiveSilence] = []

    def set_runtime(self, rows: Sequence[SilenceRow]) -> None:
        """Replace the runtime silences with those read from the state database."""
        self._runtime = [ActiveSilence.of_row(row) for row in rows]

    def all(self) -> list[ActiveSilence]:
        """Config silences first, then runtime ones."""
        return [*self._silences, *self._runtime]

    def silencing(self, labels: Mapping[str, str], wall: float) -> ActiveSilence | None:
        """The first silence muting ``labels`` at ``wall``, or None."""
        for silence in (*self._silences, *self._runtime):
            if silence.active(wall) and silence.matcher.matches(labels):
                return silence
        return None

    def active_counts(self, wall: float) -> dict[str, int]:
        """Silences in force at ``wall`` by source (``config``, ``runtime``)."""
        counts = {CONFIG: 0, RUNTIME: 0}
        for silence in (*self._silences, *self._runtime):
            if silence.active(wall):
                counts[silence.source] += 1
        return counts

    def __len__(self) -> int:
        return len(self._silences) + len(self._runtime)

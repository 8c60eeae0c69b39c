"""Runtime silences: validate a request, store it, list and expire silences.

Shared by the HTTP API (``/silences``) and the command line (``monitor silence``), so
both accept the same fields and refuse bad input with the same messages. Silences live
in the alert state database; one that has ended is kept for :data:`RETENTION` (for
``list``), then pruned when the next one is added.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import AwareDatetime, Field, ValidationError, model_validator

from alerts.notify.events import iso
from alerts.silences import ActiveSilence, Silences
from alerts.statedb.base import StateDb
from alerts.statedb.records import SilenceRow
from alerts.types import LabelMatch, LabelRegexMatch
from monitor.kernel.config.types import Model
from monitor.kernel.durations import format_duration, parse_duration
from monitor.kernel.redact import redact

RETENTION = 7 * 86400.0
"""Seconds an ended runtime silence is kept before it is pruned."""
ALIASES = {"rule": "alertname"}
"""Matcher names accepted for an alert label of another name (``rule=PgDown``)."""


class SilenceError(ValueError):
    """A request that cannot become a silence; the message names the field."""


class SilenceRequest(Model):
    """The body of ``POST /silences`` (and what ``monitor silence add`` builds)."""

    matchers: LabelMatch = Field(default_factory=dict)
    matchers_re: LabelRegexMatch = Field(default_factory=dict)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    duration: str | None = None
    comment: str
    created_by: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not self.matchers and not self.matchers_re:
            raise SilenceError("matchers: give at least one label matcher (e.g. alertname=PgDown)")
        if not self.comment.strip():
            raise SilenceError("comment: say why the alerts are silenced")
        if (self.ends_at is None) == (self.duration is None):
            raise SilenceError("ends_at: give either ends_at or duration (e.g. '2h'), not both")
        return self


def _aliased(matchers: dict[str, str], field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in matchers.items():
        label = ALIASES.get(name, name)
        if label in out:
            alias = next(a for a, target in ALIASES.items() if target == label)
            raise SilenceError(f"{field}: {alias!r} and {label!r} name the same label")
        out[label] = value
    return out


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required"
    elif error["type"] == "extra_forbidden":
        message = "unknown field"
    if not error["loc"]:  # raised by the model validator: the message names the field
        return message
    return f"{where}: {message}"


DEFAULT_MAX_SILENCE = 7 * 86400.0
"""The longest runtime silence by default (``max_silence`` in the configuration)."""


def parse_request(
    body: Any, now: float, created_by: str, max_silence: float = DEFAULT_MAX_SILENCE
) -> SilenceRow:
    """A new silence from a request body (a JSON object); raises :class:`SilenceError`.

    A silence may not last longer than ``max_silence``: a forgotten (or hostile)
    "30d" would otherwise mute the pager for a month."""
    if not isinstance(body, dict):
        raise SilenceError("body: expected a JSON object")
    try:
        request = SilenceRequest.model_validate(body)
    except ValidationError as exc:
        raise SilenceError(redact(_first_error(exc))) from None
    starts_at = request.starts_at.timestamp() if request.starts_at else now
    if request.duration is not None:
        try:
            seconds = parse_duration(request.duration)
        except ValueError as exc:
            raise SilenceError(f"duration: {exc}") from None
        if seconds <= 0:
            raise SilenceError("duration: must be longer than 0s")
        ends_at = starts_at + seconds
    else:
        assert request.ends_at is not None
        ends_at = request.ends_at.timestamp()
    if ends_at <= starts_at:
        raise SilenceError("ends_at: is not after starts_at")
    if ends_at <= now:
        raise SilenceError("ends_at: is in the past")
    if ends_at - max(starts_at, now) > max_silence:
        raise SilenceError(
            f"a silence may last at most {format_duration(max_silence)} (max_silence); "
            "for longer, disable the rule in the configuration"
        )
    return SilenceRow(
        id=uuid.uuid4().hex[:12],
        matchers=json.dumps(_aliased(request.matchers, "matchers"), sort_keys=True),
        matchers_re=json.dumps(_aliased(request.matchers_re, "matchers_re"), sort_keys=True),
        starts_at=starts_at,
        ends_at=ends_at,
        comment=request.comment.strip(),
        created_by=(request.created_by or created_by).strip() or created_by,
        created_at=now,
    )


async def add_silence(store: StateDb, row: SilenceRow) -> None:
    """Store ``row``, pruning silences that ended more than :data:`RETENTION` ago."""
    await store.add_silence(row, row.created_at - RETENTION)


async def load_into(store: StateDb, silences: Silences) -> bool:
    """Re-read the runtime silences into ``silences``; True when they changed."""
    rows = await store.load_silences()
    before = [s.id for s in silences.all()], [(s.start, s.end) for s in silences.all()]
    silences.set_runtime(rows)
    after = [s.id for s in silences.all()], [(s.start, s.end) for s in silences.all()]
    return before != after


def silence_json(silence: ActiveSilence, wall: float) -> dict[str, Any]:
    """One silence as ``GET /silences`` shows it."""
    recurring = silence.recurring
    return {
        "id": silence.id,
        "source": silence.source,
        "matchers": dict(silence.match),
        "matchers_re": dict(silence.match_re),
        "starts_at": iso(silence.start) if silence.start is not None else None,
        "ends_at": iso(silence.end) if silence.end is not None else None,
        "recurring": recurring.model_dump() if recurring is not None else None,
        "comment": silence.comment,
        "created_by": silence.created_by,
        "active": silence.active(wall),
    }


def silences_json(silences: Silences, wall: float | None = None) -> list[dict[str, Any]]:
    wall = time.time() if wall is None else wall
    return [silence_json(s, wall) for s in silences.all()]


def describe(silence: ActiveSilence, wall: float) -> str:
    """One line for ``monitor silence list``."""
    matchers = [f"{k}={v}" for k, v in silence.match.items()]
    matchers += [f"{k}=~{v}" for k, v in silence.match_re.items()]
    if silence.active(wall):
        state = "active"
    elif silence.end is not None and silence.end <= wall:
        state = "ended"
    else:
        state = "pending"
    if silence.recurring is not None:
        r = silence.recurring
        window = f"{','.join(r.days)} {r.start}-{r.end} {r.time_zone}"
    else:
        start = _when(silence.start)
        end = _when(silence.end)
        left = (
            f" ({format_duration(silence.end - wall)} left)"
            if state == "active" and silence.end is not None
            else ""
        )
        window = f"{start} -> {end}{left}"
    who = f" by {silence.created_by}" if silence.created_by else ""
    return (
        f"{silence.id:<14} {silence.source:<8} {state:<8} {' '.join(matchers) or '(all)'}  "
        f"{window}  {silence.comment!r}{who}"
    )


def _when(wall: float | None) -> str:
    if wall is None:
        return "-"
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%d %H:%M:%SZ")

"""Alerts in Alertmanager's shapes: the API v2 ``PostableAlert`` and the webhook v4 body.

``PostableAlert`` (what Prometheus posts to ``/api/v2/alerts``)::

    {"labels": {"alertname": "PgDown", "severity": "critical", "target": "primary"},
     "annotations": {"summary": "...", "description": "...", "value": "0"},
     "startsAt": "2026-01-01T12:00:00.000Z", "endsAt": "2026-01-01T12:04:00.000Z",
     "generatorURL": "https://..."}

Webhook v4 (what Alertmanager posts to a ``webhook_config``)::

    {"version": "4", "groupKey": "{}/{receiver=\\"hooks\\"}:{alertname=\\"PgDown\\"}",
     "truncatedAlerts": 0, "status": "firing", "receiver": "hooks",
     "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...},
     "externalURL": "https://...",
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "...", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "...", "fingerprint": "c4a2f8a1b7d0e9f3"}]}

``fingerprint`` is Alertmanager's own: FNV-1a 64 over the sorted label pairs, so the
same alert has the same fingerprint here and in Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from alerts.notify.events import Event, finite, iso

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero ``time.Time``: Alertmanager's ``endsAt`` of a firing alert in a webhook."""
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_SEPARATOR = 0xFF


def am_labels(event: Event) -> dict[str, str]:
    """The event's labels as Alertmanager accepts them: valid names, no empty values."""
    return {k: v for k, v in sorted(event.labels.items()) if v != "" and LABEL_NAME.match(k)}


def am_annotations(event: Event) -> dict[str, str]:
    out: dict[str, str] = {}
    if event.summary:
        out["summary"] = event.summary
    if event.description:
        out["description"] = event.description
    for key, number in (("value", finite(event.value)), ("threshold", finite(event.threshold))):
        if number is not None:
            out[key] = f"{number:g}"
    if event.runbook_url:
        out["runbook_url"] = event.runbook_url
    if event.dashboard_url:
        out["dashboard_url"] = event.dashboard_url
    return out


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's (Prometheus common/model) label-set fingerprint, 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def starts_at(event: Event) -> str:
    return iso(event.fired_at or event.active_at) or ZERO_TIME


def postable_alert(
    event: Event, *, now: float, valid_for: float, generator_url: str | None
) -> dict[str, Any]:
    """The API v2 body of one alert: a firing alert is valid for ``valid_for`` seconds
    (Alertmanager resolves it if no re-send arrives by then), a resolve ends it."""
    ends = (event.resolved_at or now) if not event.firing else now + valid_for
    alert: dict[str, Any] = {
        "labels": am_labels(event),
        "annotations": am_annotations(event),
        "startsAt": starts_at(event),
        "endsAt": iso(ends),
    }
    link = generator_url or event.dashboard_url
    if link:
        alert["generatorURL"] = link
    return alert


def webhook_alert(event: Event, generator_url: str) -> dict[str, Any]:
    labels = am_labels(event)
    return {
        "status": "firing" if event.firing else "resolved",
        "labels": labels,
        "annotations": am_annotations(event),
        "startsAt": starts_at(event),
        "endsAt": ZERO_TIME if event.firing else (iso(event.resolved_at) or ZERO_TIME),
        "generatorURL": generator_url or event.dashboard_url or "",
        "fingerprint": fingerprint(labels),
    }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def label_set(labels: Mapping[str, str]) -> str:
    """Alertmanager's ``LabelSet.String()``: ``{a="1", b="2"}``."""
    pairs = ", ".join(f"{k}={_go_quote(v)}" for k, v in sorted(labels.items()))
    return "{" + pairs + "}"


def _go_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def webhook_body(
    receiver: str,
    events: Sequence[Event],
    *,
    max_alerts: int,
    external_url: str = "",
    generator_url: str = "",
) -> dict[str, Any]:
    """Alertmanager's webhook v4 body for the events due together.

    ``commonLabels``/``commonAnnotations`` are computed over every event (as
    Alertmanager does, before truncation); ``groupLabels`` is the common ``alertname``,
    if any (the daemon's own routes do the grouping), and ``groupKey`` names the
    receiver and those labels, so a consumer sees one stable key per group.
    """
    alerts = [webhook_alert(e, generator_url) for e in events]
    common = _common([a["labels"] for a in alerts])
    group = {k: v for k, v in common.items() if k == "alertname"}
    return {
        "version": "4",
        "groupKey": f"{{}}/{label_set({'receiver': receiver})}:{label_set(group)}",
        "truncatedAlerts": max(0, len(alerts) - max_alerts),
        "status": "firing" if any(e.firing for e in events) else "resolved",
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": common,
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "alerts": alerts[:max_alerts],
    }

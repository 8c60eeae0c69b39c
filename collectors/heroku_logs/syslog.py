"""The syslog header Logplex writes on HTTPS drains, and what kind of line it is.

``<PRI>1 TIMESTAMP host APP-NAME PROCID - MSG``: VERSION 1, HOSTNAME ``host``, MSGID
``-`` and no STRUCTURED-DATA (not even its NILVALUE), so the seventh token is the
message. Classification uses APP-NAME and PROCID only: PRI differs between eras and
sources (``<45>`` and ``<134>`` for the same dyno manager line) and means nothing here.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

KINDS = (
    "router",
    "dyno",
    "runtime_metrics",
    "logplex",
    "release",
    "postgres",
    "pgbouncer",
    "postgres_log",
    "redis",
    "app",
    "unknown",
)
LINE_OUTCOMES = ("parsed", "ignored", "malformed")


class Line(NamedTuple):
    timestamp: str
    app_name: str
    procid: str
    message: str


def parse_line(text: str) -> Line | None:
    """The header fields and message of one frame, or None when it is no syslog line."""
    parts = text.split(" ", 6)
    if len(parts) < 6:
        return None
    head = parts[0]
    if not head.startswith("<") or ">" not in head:
        return None
    return Line(parts[1], parts[3], parts[4], parts[6] if len(parts) == 7 else "")


def classify(line: Line) -> str:
    app_name, procid = line.app_name, line.procid
    if app_name == "heroku":
        if procid == "router":
            return "router"
        if procid == "logplex":
            return "logplex"
        if line.message.startswith("source=") and "sample#" in line.message:
            return "runtime_metrics"
        return "dyno"
    if app_name == "app":
        if procid == "api":
            return "release"
        if procid == "heroku-postgres":
            return "postgres"
        if procid == "heroku-redis":
            return "redis"
        if procid == "heroku-pgbouncer":
            return "pgbouncer"
        if procid.startswith("postgres."):
            return "postgres_log"
        return "app"
    return "unknown"


def parse_timestamp(value: str) -> float | None:
    """RFC 3339 (``2026-11-30T14:02:01.118342+00:00``) as Unix seconds."""
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return None
    return stamp.timestamp()

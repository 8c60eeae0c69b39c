"""The schema and statements shared by the SQLite and PostgreSQL state databases.

Written in the SQL both accept (``ON CONFLICT ... DO UPDATE``, ``DOUBLE PRECISION``);
statements use ``?`` placeholders, which the PostgreSQL store turns into ``%s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any

from alerts.statedb.records import (
    Changes,
    HistoryRow,
    Notification,
    OutboxRow,
    ReceiverStatus,
    SilenceRow,
    StateData,
    StoredInstance,
)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS monitor_alert_instances (
        key TEXT PRIMARY KEY, rule TEXT NOT NULL, labels TEXT NOT NULL, state TEXT NOT NULL,
        severity TEXT NOT NULL, value DOUBLE PRECISION, threshold DOUBLE PRECISION,
        active_at DOUBLE PRECISION NOT NULL, fired_at DOUBLE PRECISION,
        last_true_at DOUBLE PRECISION NOT NULL, job_collector TEXT, job_target TEXT)""",
    """CREATE TABLE IF NOT EXISTS monitor_alert_notifications (
        instance_key TEXT NOT NULL, receiver TEXT NOT NULL, dedup_key TEXT NOT NULL,
        routing_key TEXT, status TEXT NOT NULL, first_sent_at DOUBLE PRECISION,
        last_sent_at DOUBLE PRECISION, PRIMARY KEY (instance_key, receiver))""",
    """CREATE TABLE IF NOT EXISTS monitor_alert_outbox (
        id BIGINT PRIMARY KEY, receiver TEXT NOT NULL, instance_key TEXT NOT NULL,
        action TEXT NOT NULL, grp TEXT NOT NULL, idem_key TEXT NOT NULL UNIQUE,
        payload TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
        next_attempt_at DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        last_error TEXT)""",
    """CREATE TABLE IF NOT EXISTS monitor_alert_receivers (
        name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, broken_reason TEXT,
        broken_since DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS monitor_alert_history (
        rule TEXT NOT NULL, series TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        calls DOUBLE PRECISION NOT NULL, seconds DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (rule, series, at))""",
    """CREATE TABLE IF NOT EXISTS monitor_alert_silences (
        id TEXT PRIMARY KEY, matchers TEXT NOT NULL, matchers_re TEXT NOT NULL,
        starts_at DOUBLE PRECISION NOT NULL, ends_at DOUBLE PRECISION NOT NULL,
        comment TEXT NOT NULL, created_by TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        expired_at DOUBLE PRECISION)""",
)

Statement = tuple[str, Sequence[Sequence[Any]]]
"""SQL and the parameter rows to run it with (executemany)."""


def _upsert(table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


def _columns(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


_OUTBOX_COLUMNS = [("grp" if c == "group" else c) for c in _columns(OutboxRow)]

UPSERT_INSTANCE = _upsert("monitor_alert_instances", _columns(StoredInstance), ["key"])
UPSERT_NOTIFICATION = _upsert(
    "monitor_alert_notifications", _columns(Notification), ["instance_key", "receiver"]
)
UPSERT_OUTBOX = _upsert("monitor_alert_outbox", _OUTBOX_COLUMNS, ["id"])
UPSERT_RECEIVER = _upsert("monitor_alert_receivers", _columns(ReceiverStatus), ["name"])
INSERT_SILENCE = (
    f"INSERT INTO monitor_alert_silences ({', '.join(_columns(SilenceRow))}) "
    f"VALUES ({', '.join('?' for _ in _columns(SilenceRow))})"
)
SELECT_SILENCES = (
    f"SELECT {', '.join(_columns(SilenceRow))} FROM monitor_alert_silences ORDER BY starts_at, id"
)
EXPIRE_SILENCE = (
    "UPDATE monitor_alert_silences SET expired_at = ?, ends_at = ? "
    "WHERE id = ? AND expired_at IS NULL AND ends_at > ?"
)
"""Parameters: now, now, id, now. A silence already over is left as it is."""
SILENCE_EXISTS = "SELECT 1 FROM monitor_alert_silences WHERE id = ?"
PRUNE_SILENCES = "DELETE FROM monitor_alert_silences WHERE ends_at < ?"
INSERT_HISTORY = _upsert("monitor_alert_history", _columns(HistoryRow), ["rule", "series", "at"])


def _row(record: Any) -> tuple[Any, ...]:
    """A record's fields as a tuple, shallow (``dataclasses.astuple`` deep-copies every
    value, which dominated writing 10,000 rows)."""
    return tuple(getattr(record, f.name) for f in fields(record))


def statements(changes: Changes) -> list[Statement]:
    """The writes of one batch, in an order that keeps every step consistent."""
    out: list[Statement] = []

    def add(sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            out.append((sql, rows))

    add(UPSERT_INSTANCE, (_row(i) for i in changes.instances))
    add(
        "DELETE FROM monitor_alert_instances WHERE key = ?",
        ((k,) for k in changes.instances_deleted),
    )
    add(UPSERT_NOTIFICATION, (_row(n) for n in changes.notifications))
    add(
        "DELETE FROM monitor_alert_notifications WHERE instance_key = ? AND receiver = ?",
        changes.notifications_deleted,
    )
    add(UPSERT_OUTBOX, (_row(r) for r in changes.outbox))
    add("DELETE FROM monitor_alert_outbox WHERE id = ?", ((i,) for i in changes.outbox_deleted))
    add(UPSERT_RECEIVER, (_row(r) for r in changes.receivers))
    add(
        "DELETE FROM monitor_alert_history WHERE rule = ? AND series = ?",
        changes.history_reset,
    )
    add(INSERT_HISTORY, (_row(h) for h in changes.history))
    add(
        "DELETE FROM monitor_alert_history WHERE rule = ? AND series = ? AND at = ?",
        changes.history_dropped,
    )
    add(
        "DELETE FROM monitor_alert_history WHERE rule = ? AND at < ?",
        changes.history_before.items(),
    )
    return out


QUERIES: tuple[tuple[str, type], ...] = (
    (f"SELECT {', '.join(_columns(StoredInstance))} FROM monitor_alert_instances", StoredInstance),
    (f"SELECT {', '.join(_columns(Notification))} FROM monitor_alert_notifications", Notification),
    (f"SELECT {', '.join(_OUTBOX_COLUMNS)} FROM monitor_alert_outbox ORDER BY id", OutboxRow),
    (f"SELECT {', '.join(_columns(ReceiverStatus))} FROM monitor_alert_receivers", ReceiverStatus),
    (
        f"SELECT {', '.join(_columns(HistoryRow))} FROM monitor_alert_history "
        "ORDER BY rule, series, at",
        HistoryRow,
    ),
)


def state_data(results: Sequence[Sequence[Sequence[Any]]]) -> StateData:
    """Build :class:`StateData` from the rows of :data:`QUERIES`, in order."""
    instances, notifications, outbox, receivers, history = (
        [cls(*row) for row in rows] for (_, cls), rows in zip(QUERIES, results, strict=True)
    )
    return StateData(instances, notifications, outbox, receivers, history)

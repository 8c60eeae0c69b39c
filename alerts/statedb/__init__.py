"""Durable alert state: instances, notifications sent, the delivery outbox.

``state.url`` chooses the database: SQLite (default, with an ``flock`` for leadership) or
PostgreSQL (with a session-level advisory lock).
"""

from __future__ import annotations

from alerts.statedb.base import Leadership, StateDb, StateDbError
from alerts.statedb.config import StateConfig


def open_state_db(config: StateConfig) -> StateDb:
    """The state database for ``config.url`` (not connected yet)."""
    if config.url.startswith("sqlite:"):
        from alerts.statedb.sqlite import SqliteStateDb, sqlite_path

        return SqliteStateDb(sqlite_path(config.url))
    from alerts.statedb.postgres import PostgresStateDb

    return PostgresStateDb(config.url)


__all__ = ["Leadership", "StateDb", "StateDbError", "open_state_db"]

"""Durable alert state: instances, notifications sent, the delivery outbox.

``state.url`` chooses the database: SQLite (default) or PostgreSQL. Both keep the
leadership lease (:mod:`alerts.statedb.lease`) in a table of their own.
"""

from __future__ import annotations

from alerts.statedb.base import Leadership, StateDb, StateDbError
from alerts.statedb.config import StateConfig


def open_state_db(config: StateConfig) -> StateDb:
    """The state database for ``config.url`` (not connected yet)."""
    if config.url.startswith("sqlite:"):
        from alerts.statedb.sqlite import SqliteStateDb, sqlite_path

        return SqliteStateDb(sqlite_path(config.url), config.lease)
    from alerts.statedb.postgres import PostgresStateDb

    return PostgresStateDb(config.url, config.lease)


__all__ = ["Leadership", "StateDb", "StateDbError", "open_state_db"]

"""Durable alert state: instances, notifications sent, the delivery outbox.

``state.url`` chooses the store: SQLite (default, with an ``flock`` for leadership) or
PostgreSQL (with a session-level advisory lock).
"""

from __future__ import annotations

from alerts.state.base import Leadership, StateStore, StateStoreError
from monitor.app.config import StateConfig


def open_state_store(config: StateConfig) -> StateStore:
    """The store for ``config.url`` (not connected yet)."""
    if config.url.startswith("sqlite:"):
        from alerts.state.sqlite import SqliteStateStore, sqlite_path

        return SqliteStateStore(sqlite_path(config.url))
    from alerts.state.postgres import PostgresStateStore

    return PostgresStateStore(config.url)


__all__ = ["Leadership", "StateStore", "StateStoreError", "open_state_store"]

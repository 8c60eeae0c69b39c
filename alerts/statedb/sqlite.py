"""The SQLite state database (the default): one file, written from a worker thread.

Leader election is the same lease as on PostgreSQL (:mod:`alerts.statedb.lease`), kept
in the file itself, so a leader that is frozen (SIGSTOP, a hung NFS) is replaced once
its lease runs out, as one that died. ``:memory:`` is always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from dataclasses import astuple
from pathlib import Path
from typing import Any

from alerts.statedb.base import Leadership, StateDb, StateDbError
from alerts.statedb.lease import (
    FENCE,
    HOLDER,
    LEASE_ROW,
    LEASE_SCHEMA,
    RELEASE,
    Lease,
    acquire_sql,
    check_token,
    dead_holder,
)
from alerts.statedb.records import Changes, SilenceRow, StateData
from alerts.statedb.sql import (
    EXPIRE_SILENCE,
    INSERT_SILENCE,
    PRUNE_SILENCES,
    QUERIES,
    SCHEMA,
    SELECT_SILENCES,
    SILENCE_EXISTS,
    state_data,
    statements,
)


def sqlite_path(url: str) -> str:
    """``sqlite:///rel.db`` -> ``rel.db``; ``sqlite:////abs.db`` -> ``/abs.db``."""
    path = url.removeprefix("sqlite://")
    path = path.removeprefix("/")
    if not path:
        raise ValueError("sqlite URL names no file; use sqlite:///path/to/state.db")
    return path


NOW = "((julianday('now') - 2440587.5) * 86400.0)"
"""The clock of the host the file is on, in epoch seconds."""
ACQUIRE = acquire_sql(NOW)


class SqliteStateDb(StateDb):
    def __init__(self, path: str, lease: float = 30.0) -> None:
        self.path = path
        self.lease = lease
        self.description = f"sqlite {path}"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    def _run(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            try:
                return fn(*args)
            except sqlite3.Error as exc:
                raise StateDbError(f"{self.description}: {exc}") from None

    async def _call(self, fn: Any, *args: Any) -> Any:
        if self.in_memory:
            return self._run(fn, *args)  # tiny and never blocks on disk
        return await asyncio.to_thread(self._run, fn, *args)

    def _open(self) -> None:
        if self._conn is not None:
            return
        if not self.in_memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        if not self.in_memory:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        for ddl in (*SCHEMA, LEASE_SCHEMA):
            conn.execute(ddl)
        conn.execute(LEASE_ROW)
        self._conn = conn

    async def open(self) -> None:
        await self._call(self._open)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._open()
        assert self._conn is not None
        return self._conn

    def _load(self) -> StateData:
        conn = self._connection()
        return state_data([conn.execute(sql).fetchall() for sql, _ in QUERIES])

    async def load(self) -> StateData:
        result: StateData = await self._call(self._load)
        return result

    def _apply(self, changes: Changes, token: int | None) -> None:
        def write(conn: sqlite3.Connection) -> None:
            if token is not None:
                row = conn.execute(FENCE).fetchone()
                check_token(row[0] if row else None, token)
            for sql, rows in statements(changes):
                conn.executemany(sql, rows)

        self._transaction(write)

    def _transaction(self, write: Any) -> Any:
        """``write(conn)`` in one ``BEGIN IMMEDIATE`` transaction. Whatever fails, the
        COMMIT included (disk full, I/O error, busy), the transaction is rolled back, so
        the connection is usable for the next write."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = write(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return result

    async def apply(self, changes: Changes, token: int | None = None) -> None:
        if changes:
            await self._call(self._apply, changes, token)

    def _load_silences(self) -> list[SilenceRow]:
        rows = self._connection().execute(SELECT_SILENCES).fetchall()
        return [SilenceRow(*row) for row in rows]

    async def load_silences(self) -> list[SilenceRow]:
        result: list[SilenceRow] = await self._call(self._load_silences)
        return result

    def _add_silence(self, row: SilenceRow, prune_before: float) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(PRUNE_SILENCES, (prune_before,))
            conn.execute(INSERT_SILENCE, astuple(row))

        self._transaction(write)

    async def add_silence(self, row: SilenceRow, prune_before: float) -> None:
        await self._call(self._add_silence, row, prune_before)

    def _expire_silence(self, silence_id: str, now: float) -> bool:
        conn = self._connection()
        conn.execute(EXPIRE_SILENCE, (now, now, silence_id, now))
        return conn.execute(SILENCE_EXISTS, (silence_id,)).fetchone() is not None

    async def expire_silence(self, silence_id: str, now: float) -> bool:
        found: bool = await self._call(self._expire_silence, silence_id, now)
        return found

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._call(self._close)

    def _acquire(self, holder: str, token: int, lease: float) -> int | None:
        def write(conn: sqlite3.Connection) -> int | None:
            current = conn.execute(HOLDER).fetchone()
            dead = dead_holder(current[0] if current else None)
            params = (holder, token, holder, lease, holder, token, dead)
            row = conn.execute(ACQUIRE, params).fetchone()
            return int(row[0]) if row else None

        got: int | None = self._transaction(write)
        return got

    def _release(self, holder: str, token: int) -> None:
        self._connection().execute(RELEASE, (holder, token))

    def leadership(self) -> Leadership:
        if self.in_memory:
            return AlwaysLeader()
        return SqliteLease(self, self.lease)


class AlwaysLeader(Leadership):
    async def try_acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class SqliteLease(Lease):
    """The lease row in the state file itself."""

    def __init__(self, db: SqliteStateDb, lease: float) -> None:
        super().__init__(lease)
        self._db = db

    async def _acquire(self, holder: str, token: int, lease: float) -> int | None:
        got: int | None = await self._db._call(self._db._acquire, holder, token, lease)
        return got

    async def _release(self, holder: str, token: int) -> None:
        await self._db._call(self._db._release, holder, token)

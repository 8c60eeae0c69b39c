"""The SQLite state database (the default): one file, written from a worker thread.

Leader election on one host is an exclusive ``flock`` on ``<file>.lock``: the kernel
drops it when the process dies, however it dies. ``:memory:`` is always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import threading
from dataclasses import astuple
from pathlib import Path
from typing import IO, Any

from alerts.statedb.base import Leadership, StateDb, StateDbError
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


class SqliteStateDb(StateDb):
    def __init__(self, path: str) -> None:
        self.path = path
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
        for ddl in SCHEMA:
            conn.execute(ddl)
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

    def _apply(self, changes: Changes) -> None:
        def write(conn: sqlite3.Connection) -> None:
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

    async def apply(self, changes: Changes) -> None:
        if changes:
            await self._call(self._apply, changes)

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

    def leadership(self) -> Leadership:
        if self.in_memory:
            return AlwaysLeader()
        return FileLock(self.path + ".lock")


class AlwaysLeader(Leadership):
    async def try_acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class FileLock(Leadership):
    """An exclusive, non-blocking ``flock`` held for as long as the process leads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    async def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        try:
            handle = open(self.path, "ab")  # noqa: SIM115, ASYNC230 - tiny, kept open
        except OSError as exc:
            raise StateDbError(f"cannot open lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        except OSError as exc:
            handle.close()
            raise StateDbError(f"cannot lock {self.path}: {exc.strerror}") from None
        with contextlib.suppress(OSError):
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n".encode())
            handle.flush()
        self._file = handle
        return True

    async def still_held(self) -> bool:
        return self._file is not None

    async def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

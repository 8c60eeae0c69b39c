"""The PostgreSQL state database (``state.url: postgresql://...``), for hosts whose disk
does not survive a restart (Heroku wipes a dyno's filesystem at least daily).

Leader election is a session-level advisory lock taken on a dedicated connection: it
is released when that session ends, including when the process is killed or the
network drops, so at most one daemon delivers notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import astuple
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import psycopg

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
from monitor.kernel.config.types import normalize_postgres_url
from monitor.kernel.redact import describe_error, redact, register_secret

CONNECT_TIMEOUT = 5
OPERATION_TIMEOUT = 10.0
LOCK_ID = int.from_bytes(
    hashlib.sha256(b"app-monitor alerting leader").digest()[:8], "big", signed=True
)
"""The advisory lock key (a constant: one alerting leader per state database)."""

Connection = psycopg.AsyncConnection[tuple[Any, ...]]
_T = TypeVar("_T")


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


async def _connect(dsn: str) -> Connection:
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT + 1):
            return await psycopg.AsyncConnection.connect(
                dsn,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name="app-monitor-alerting",
                prepare_threshold=None,
            )
    except Exception as exc:
        raise StateDbError(f"cannot connect to the state store: {describe_error(exc)}") from None


class PostgresStateDb(StateDb):
    def __init__(self, url: str) -> None:
        self.dsn = str(normalize_postgres_url(url))
        with contextlib.suppress(ValueError):
            register_secret(unquote(urlsplit(self.dsn).password or "") or None)
        self.description = f"postgresql {redact(self.dsn)}"
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await _connect(self.dsn)
        return self._conn

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def open(self) -> None:
        async with self._lock:
            conn = await self._connection()
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT), conn.transaction():
                    # two daemons starting together must not race on CREATE TABLE
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID + 1,))
                    for ddl in SCHEMA:
                        await conn.execute(ddl)
            except Exception as exc:
                await self._drop()
                raise StateDbError(f"{self.description}: {describe_error(exc)}") from None

    async def load(self) -> StateData:
        async with self._lock:
            conn = await self._connection()
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT):
                    results = []
                    for sql, _ in QUERIES:
                        cur = await conn.execute(sql)
                        results.append(await cur.fetchall())
            except Exception as exc:
                await self._drop()
                raise StateDbError(f"{self.description}: {describe_error(exc)}") from None
            return state_data(results)

    async def apply(self, changes: Changes) -> None:
        if not changes:
            return
        async with self._lock:
            conn = await self._connection()
            try:
                async with (
                    asyncio.timeout(OPERATION_TIMEOUT),
                    conn.transaction(),
                    conn.cursor() as cur,
                ):
                    for sql, rows in statements(changes):
                        await cur.executemany(_pg(sql), rows)
            except Exception as exc:
                await self._drop()
                raise StateDbError(f"{self.description}: {describe_error(exc)}") from None

    async def _silence_op(self, op: Callable[[Connection], Awaitable[_T]]) -> _T:
        async with self._lock:
            conn = await self._connection()
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT), conn.transaction():
                    return await op(conn)
            except Exception as exc:
                await self._drop()
                raise StateDbError(f"{self.description}: {describe_error(exc)}") from None

    async def load_silences(self) -> list[SilenceRow]:
        async def op(conn: Connection) -> list[SilenceRow]:
            cur = await conn.execute(SELECT_SILENCES)
            return [SilenceRow(*row) for row in await cur.fetchall()]

        return await self._silence_op(op)

    async def add_silence(self, row: SilenceRow, prune_before: float) -> None:
        async def op(conn: Connection) -> None:
            await conn.execute(_pg(PRUNE_SILENCES), (prune_before,))
            await conn.execute(_pg(INSERT_SILENCE), astuple(row))

        await self._silence_op(op)

    async def expire_silence(self, silence_id: str, now: float) -> bool:
        async def op(conn: Connection) -> bool:
            await conn.execute(_pg(EXPIRE_SILENCE), (now, now, silence_id, now))
            cur = await conn.execute(_pg(SILENCE_EXISTS), (silence_id,))
            return await cur.fetchone() is not None

        return await self._silence_op(op)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    def leadership(self) -> Leadership:
        return AdvisoryLock(self.dsn)


class AdvisoryLock(Leadership):
    """``pg_try_advisory_lock`` on a connection used for nothing else."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Connection | None = None
        self._held = False

    async def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def try_acquire(self) -> bool:
        if self._held and await self.still_held():
            return True
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await _connect(self._dsn)
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT):
                cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_ID,))
                row = await cur.fetchone()
        except Exception as exc:
            await self._drop()
            raise StateDbError(f"advisory lock: {describe_error(exc)}") from None
        self._held = bool(row and row[0])
        return self._held

    async def still_held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT):
                await self._conn.execute("SELECT 1")
        except Exception as exc:
            await self._drop()  # the session is gone, and the lock with it
            raise StateDbError(f"advisory lock: {describe_error(exc)}") from None
        return True

    async def release(self) -> None:
        if self._conn is not None and self._held:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
        await self._drop()

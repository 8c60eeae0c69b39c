"""The monitor's own small connection pool to one PostgreSQL server.

Connections are autocommit (the monitor must never sit idle in a transaction, and
``now()`` and the statistics snapshot must move between polls), carry a short connect
timeout and a server-side ``statement_timeout``, and are pinged before reuse so a
restarted server is reconnected to transparently.

Deliberately small rather than psycopg_pool: at most ``max_connections`` connections,
opened on demand, none kept after an error, and a failed connect raises the server's
own error ("connection refused", "password authentication failed") instead of a pool
timeout, so ``monitor check`` and the logs say what is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from collectors.postgres.config import PostgresTarget

APPLICATION_NAME = "app-monitor"
PING_AFTER_IDLE = 5.0
"""A connection idle for longer than this is pinged before reuse."""

Connection = psycopg.AsyncConnection[dict[str, Any]]


def connection_kwargs(target: PostgresTarget) -> dict[str, Any]:
    return {
        "autocommit": True,
        "connect_timeout": max(1, round(target.connect_timeout)),
        "application_name": APPLICATION_NAME,
        "options": f"-c statement_timeout={round(target.statement_timeout * 1000)}",
        # no server-side prepared statements: safe behind a transaction pooler
        "prepare_threshold": None,
        "row_factory": dict_row,
    }


class PostgresPool:
    """At most ``max_connections`` autocommit connections to one target."""

    def __init__(self, target: PostgresTarget) -> None:
        self._target = target
        self._idle: list[tuple[Connection, float]] = []
        self._slots: asyncio.Semaphore | None = None
        self._in_use: set[Connection] = set()

    async def _connect(self) -> Connection:
        async with asyncio.timeout(self._target.connect_timeout + 1.0):
            return await psycopg.AsyncConnection.connect(
                self._target.dsn(), **connection_kwargs(self._target)
            )

    async def _acquire(self) -> Connection:
        while self._idle:
            conn, idle_since = self._idle.pop()
            if conn.closed or conn.broken:
                continue
            if time.monotonic() - idle_since > PING_AFTER_IDLE:
                try:
                    async with asyncio.timeout(self._target.connect_timeout):
                        await conn.execute("")
                except Exception:
                    await _close_quietly(conn)
                    continue
            return conn
        return await self._connect()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(max(1, self._target.max_connections))
        async with self._slots:
            conn = await self._acquire()
            self._in_use.add(conn)
            try:
                yield conn
            except BaseException:
                self._in_use.discard(conn)
                await _close_quietly(conn)
                raise
            self._in_use.discard(conn)
            healthy = (
                not conn.closed
                and not conn.broken
                and conn.info.transaction_status == TransactionStatus.IDLE
            )
            if healthy:
                self._idle.append((conn, time.monotonic()))
            else:
                await _close_quietly(conn)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            await _close_quietly(conn)
        for conn in list(self._in_use):
            await _close_quietly(conn)


async def _close_quietly(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        await conn.close()

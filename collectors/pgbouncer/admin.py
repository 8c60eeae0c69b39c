"""One connection to a PgBouncer admin console, reopened after a restart.

The console speaks only the simple query protocol and rejects ``BEGIN``: the connection
is autocommit, uses client-side binding (``AsyncClientCursor``) and never prepares
statements (psycopg auto-prepares the 6th identical query by default, which the console
refuses with "extended query protocol not supported by admin console"; psycopg #817).
PgBouncer rejects the ``options`` startup parameter and ``SET statement_timeout``, so
deadlines are enforced on this side only (the job's timeout and ``connect_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from collectors.closing import BackgroundCloser
from collectors.pgbouncer.config import PgBouncerTarget

APPLICATION_NAME = "app-monitor"

Row = dict[str, Any]
Connection = psycopg.AsyncConnection[Row]

_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)?)")


def connection_kwargs(target: PgBouncerTarget) -> dict[str, Any]:
    return {
        "autocommit": True,
        "prepare_threshold": None,
        "cursor_factory": psycopg.AsyncClientCursor,
        "row_factory": dict_row,
        "connect_timeout": max(1, round(target.connect_timeout)),
        "application_name": APPLICATION_NAME,
    }


def parse_version(text: str) -> str | None:
    """``"PgBouncer 1.18.0"`` -> ``"1.18.0"``."""
    m = _VERSION.search(text)
    return m[1] if m else None


def find_version(rows: Sequence[Row], notices: Sequence[str]) -> str | None:
    """PgBouncer's version from ``SHOW VERSION``: a row since 1.12, a NOTICE before."""
    texts = [v for row in rows for v in row.values() if isinstance(v, str)]
    for text in (*texts, *notices):
        if found := parse_version(text):
            return found
    return None


class AdminConsole:
    """Runs ``SHOW`` commands on one admin console, one batch at a time."""

    def __init__(self, target: PgBouncerTarget) -> None:
        self._target = target
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._notices: list[str] = []
        self._closer = BackgroundCloser()
        self.connects = 0
        """Connections opened so far (a reconnect after a restart adds one)."""

    async def _connect(self) -> Connection:
        async with asyncio.timeout(self._target.connect_timeout + 1.0):
            conn = await psycopg.AsyncConnection.connect(
                self._target.dsn(), **connection_kwargs(self._target)
            )
        self.connects += 1
        conn.add_notice_handler(lambda diag: self._notices.append(diag.message_primary or ""))
        return conn

    async def _run(self, conn: Connection, commands: Sequence[str]) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = {}
        for command in commands:
            cur = await conn.execute(f"SHOW {command}")
            out[command] = await cur.fetchall() if cur.description else []
        return out

    async def show(self, *commands: str) -> dict[str, list[Row]]:
        """``{"POOLS": [row, ...], ...}``; reconnects once if the connection went stale.

        Cancelling the caller (its deadline) returns at once. psycopg answers a first
        cancellation by cancelling the query on the server and waiting up to 5 s for it,
        and up to 5 s more for the reply: a frozen PgBouncer would hold the job for 10 s
        past its deadline. The work runs in its own task, which is left to be cancelled
        again (psycopg then closes the connection at once) in the background.
        """
        async with self._lock:
            work = asyncio.get_running_loop().create_task(self._show(commands))
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                in_use, self._conn = self._conn, None
                self._closer.close_later(_abandon(work, in_use))
                raise

    async def _show(self, commands: Sequence[str]) -> dict[str, list[Row]]:
        self._notices.clear()
        fresh = self._conn is None or self._conn.closed or self._conn.broken
        if fresh:
            await self._drop()
            self._conn = await self._connect()
        conn = self._conn
        assert conn is not None
        try:
            return await self._run(conn, commands)
        except psycopg.OperationalError:
            await self._drop()
            if fresh:
                raise
        # the server restarted (or dropped us) since the last run: one more try
        self._conn = conn = await self._connect()
        try:
            return await self._run(conn, commands)
        except psycopg.OperationalError:
            await self._drop()
            raise

    @property
    def notices(self) -> list[str]:
        """NOTICE messages received during the last :meth:`show`."""
        return list(self._notices)

    async def version(self) -> str | None:
        return find_version((await self.show("VERSION"))["VERSION"], self._notices)

    def discard(self) -> None:
        """Forget the connection (after a timeout, it may be mid-query); closed later."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._closer.close_later(_close_quietly(conn))

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close_quietly(conn)

    async def close(self) -> None:
        await self._drop()
        await self._closer.wait()


async def _abandon(work: asyncio.Task[Any], conn: Connection | None) -> None:
    """Cancel ``work`` until it ends (psycopg gives up on a second cancel), then close
    the connection it was using."""
    while not work.done():
        work.cancel()
        await asyncio.wait({work}, timeout=0.1)
    if not work.cancelled():
        work.exception()  # retrieved, so asyncio does not log it as never retrieved
    if conn is not None:
        await _close_quietly(conn)


async def _close_quietly(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        await conn.close()

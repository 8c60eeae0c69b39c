"""The PostgreSQL state database (``state.url: postgresql://...``), for hosts whose disk
does not survive a restart (Heroku wipes a dyno's filesystem at least daily).

Leader election is the lease of :mod:`alerts.statedb.lease` (a row renewed with the
server's clock, and a fencing token checked by every write), on a dedicated connection.
Connections use TCP keepalives and ``tcp_user_timeout``, so a peer that vanishes is
noticed in seconds rather than the kernel's two hours; a leader that vanishes holds
nothing on the server beyond its lease. Writes set ``idle_in_transaction_session_timeout``
so a leader frozen inside a transaction cannot hold the lease row's lock for long.

A transaction-mode pooler (PgBouncer ``pool_mode = transaction``) between the daemons and
the server is detected by :meth:`PostgresStateDb.pooling_problem` (``monitor check``
and a warning at start): the lease itself is transactional and stays correct, but the
keepalives then guard only the hop to the pooler. Point ``state.url`` at the server or
at a session-mode pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import astuple
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import psycopg

from alerts.statedb.base import Leadership, StateDb, StateDbError
from alerts.statedb.lease import (
    FENCE,
    HOLDER,
    LEASE_ROW,
    LEASE_SCHEMA,
    RELEASE,
    Fenced,
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
from monitor.kernel.config.types import normalize_postgres_url
from monitor.kernel.redact import describe_error, redact, register_secret

CONNECT_TIMEOUT = 5
OPERATION_TIMEOUT = 10.0
LOCK_ID = int.from_bytes(
    hashlib.sha256(b"app-monitor alerting leader").digest()[:8], "big", signed=True
)
"""Advisory lock key; ``LOCK_ID + 1`` serialises creating the schema."""
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
"""A silent peer is declared dead after about 11 s (5 + 3 x 2) idle, or 10 s of unacked
data, instead of the kernel's default two hours."""
LOCK_TIMEOUT = "2s"
"""How long taking the lease waits for the row lock (a write of the leader in flight)."""
IDLE_IN_TRANSACTION = "5s"
"""A session frozen inside a write transaction is ended by the server after this."""
NOW = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
ACQUIRE = acquire_sql(NOW).replace("?", "%s")

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
                **KEEPALIVES,
            )
    except Exception as exc:
        raise StateDbError(f"cannot connect to the state store: {describe_error(exc)}") from None


class PostgresStateDb(StateDb):
    def __init__(self, url: str, lease: float = 30.0) -> None:
        self.dsn = str(normalize_postgres_url(url))
        self.lease = lease
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
                    for ddl in (*SCHEMA, LEASE_SCHEMA):
                        await conn.execute(ddl)
                    await conn.execute(LEASE_ROW)
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

    async def apply(self, changes: Changes, token: int | None = None) -> None:
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
                    await cur.execute(
                        f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'"
                    )
                    if token is not None:
                        # FOR SHARE: a takeover waits until this write is committed
                        await cur.execute(FENCE + " FOR SHARE")
                        row = await cur.fetchone()
                        check_token(row[0] if row else None, token)
                    for sql, rows in statements(changes):
                        await cur.executemany(_pg(sql), rows)
            except Fenced:
                raise
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
        return PostgresLease(self.dsn, self.lease)

    async def pooling_problem(self) -> str | None:
        """Detect a transaction-mode pooler: with one, two client connections share one
        server session between transactions (same backend pid, a session setting made on
        one seen on the other); directly, or through a session-mode pool, never."""
        marker = uuid.uuid4().hex
        first = second = None
        try:
            first, second = await _connect(self.dsn), await _connect(self.dsn)
            async with asyncio.timeout(OPERATION_TIMEOUT):
                pids = [await _scalar(first, "SELECT pg_backend_pid()")]
                await first.execute(f"SET app_monitor.probe = '{marker}'")
                pids.append(await _scalar(second, "SELECT pg_backend_pid()"))
                seen = await _scalar(second, "SELECT current_setting('app_monitor.probe', true)")
                pids.append(await _scalar(first, "SELECT pg_backend_pid()"))
        except StateDbError:
            return None  # unreachable: reported by the connection check itself
        except Exception as exc:
            return f"cannot probe the state store for a pooler: {describe_error(exc)}"
        finally:
            for conn in (first, second):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
        first_a, second_pid, first_b = pids
        if seen == marker or first_a != first_b or second_pid == first_a:
            return (
                "state.url goes through a transaction-mode connection pooler (connections "
                "share server sessions); point it at the PostgreSQL server or a "
                "session-mode pool"
            )
        return None


async def _scalar(conn: Connection, sql: str) -> Any:
    cur = await conn.execute(sql)
    row = await cur.fetchone()
    return row[0] if row else None


class PostgresLease(Lease):
    """The lease row, taken and renewed on a connection used for nothing else."""

    def __init__(self, dsn: str, lease: float) -> None:
        super().__init__(lease)
        self._dsn = dsn
        self._conn: Connection | None = None

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _acquire(self, holder: str, token: int, lease: float) -> int | None:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await _connect(self._dsn)
        conn = self._conn
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT), conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                cur = await conn.execute(HOLDER)
                current = await cur.fetchone()
                dead = dead_holder(current[0] if current else None)
                params = (holder, token, holder, lease, holder, token, dead)
                cur = await conn.execute(ACQUIRE, params)
                row = await cur.fetchone()
        except psycopg.errors.LockNotAvailable:
            return None  # the leader is writing right now: it holds the lease
        except Exception as exc:
            await self._drop()
            raise StateDbError(f"leadership lease: {describe_error(exc)}") from None
        return int(row[0]) if row else None

    async def _release(self, holder: str, token: int) -> None:
        if self._conn is not None and not self._conn.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._conn.execute(_pg(RELEASE), (holder, token))
        await self._drop()

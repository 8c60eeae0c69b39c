"""Run a custom query on PostgreSQL: read-only, time-boxed, with a bounded result.

Each run is one transaction on the queries' own small pool (never the built-in
collectors' connections)::

    BEGIN READ ONLY; SET LOCAL statement_timeout = ...; SET LOCAL lock_timeout = ...
    DECLARE c NO SCROLL CURSOR FOR <sql>        -- bind parameters, never formatted
    FETCH FORWARD <max_rows + 1> FROM c
    MOVE FORWARD ALL FROM c                     -- only when capped: counts the excess
    ROLLBACK

A server-side cursor keeps a 100,000-row result on the server: the daemon reads at most
``max_rows`` rows and only counts the rest. ``DECLARE`` also accepts only a SELECT or
VALUES, and the READ ONLY transaction refuses whatever writes anyway (a function that
inserts, ``nextval()``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from collectors.postgres.connection import Connection, PostgresPool

CURSOR_NAME = "app_monitor_query"
NUMERIC_TYPES = frozenset(
    {"int2", "int4", "int8", "float4", "float8", "numeric", "bool", "oid", "money"}
    | {"timestamp", "timestamptz", "interval"}
)
"""Types a value column may have (times become Unix seconds, intervals seconds)."""

Params = Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Limits:
    """Server-side limits of one run (seconds)."""

    statement_timeout: float
    lock_timeout: float


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    excess: int
    """Rows beyond ``max_rows``, counted on the server and never read."""


@dataclass(frozen=True, slots=True)
class Explained:
    """What ``monitor check`` learns without running the query."""

    columns: tuple[tuple[str, str], ...]
    """(name, type name) of each result column."""
    plan_rows: float
    total_cost: float


_CURSOR = pgsql.Identifier(CURSOR_NAME)
_FETCH = pgsql.SQL("FETCH FORWARD {} FROM {}")


def _declare(query: str) -> pgsql.Composed:
    """``DECLARE`` of the user's query (its text as written; values only as parameters)."""
    return pgsql.SQL("DECLARE {} NO SCROLL CURSOR FOR ").format(_CURSOR) + pgsql.SQL(query)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _begin(limits: Limits) -> str:
    # numbers only: nothing user-supplied is formatted into this text
    return (
        "BEGIN TRANSACTION READ ONLY; "
        f"SET LOCAL statement_timeout = {_ms(limits.statement_timeout)}; "
        f"SET LOCAL lock_timeout = {_ms(limits.lock_timeout)}"
    )


class PostgresQueryRunner:
    """Runs custom queries on one target through the pool the queries share."""

    def __init__(self, pool: PostgresPool) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def _read_only(self, limits: Limits) -> Any:
        """A connection inside a READ ONLY transaction, rolled back afterwards.

        A failed statement rolls the transaction back and keeps the connection; a broken
        or cancelled one is dropped by the pool.
        """
        failure: psycopg.Error | None = None
        async with self.pool.connection() as conn:
            try:
                await conn.execute(_begin(limits))
                yield conn
            except psycopg.Error as exc:
                if conn.closed or conn.broken:
                    raise
                failure = exc
                await _rollback(conn)
            else:
                await _rollback(conn)
            # cancelled (the run's deadline): the pool drops the connection mid-query
        if failure is not None:
            raise failure

    async def fetch(
        self, query: str, params: Params, *, max_rows: int, limits: Limits
    ) -> QueryResult:
        deadline = time.monotonic() + limits.statement_timeout
        async with self._read_only(limits) as conn:
            await conn.execute(_declare(query), params)
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(_FETCH.format(pgsql.Literal(max_rows + 1), _CURSOR))
            columns = tuple(d.name for d in cur.description or ())
            rows = await cur.fetchall()
            excess = 0
            if len(rows) > max_rows:
                del rows[max_rows:]
                excess = 1 + await self._count_rest(conn, deadline)
        return QueryResult(columns, rows, excess)

    async def _count_rest(self, conn: Connection, deadline: float) -> int:
        """Rows left in the cursor, within what is left of the statement budget."""
        remaining = deadline - time.monotonic()
        if remaining < 0.05:
            return 0
        await conn.execute(f"SET LOCAL statement_timeout = {_ms(remaining)}")
        cur = await conn.execute(pgsql.SQL("MOVE FORWARD ALL FROM {}").format(_CURSOR))
        return max(0, cur.rowcount)

    async def explain(self, query: str, params: Params, *, limits: Limits) -> Explained:
        """Plan the query (a bad table or column fails here) and describe its columns
        (a server-side cursor is declared, never fetched: nothing runs)."""
        async with self._read_only(limits) as conn:
            plan_cur = await conn.execute(
                pgsql.SQL("EXPLAIN (FORMAT JSON) ") + pgsql.SQL(query),
                params,
            )
            plan_row = await plan_cur.fetchone()
            cur = conn.cursor(name=CURSOR_NAME, row_factory=tuple_row, scrollable=False)
            await cur.execute(query, params)
            described = cur.description or []
            columns = tuple((d.name, _type_name(conn, d.type_code)) for d in described)
            await cur.close()
        plan = _top_plan(plan_row)
        return Explained(columns, float(plan.get("Plan Rows", 0)), float(plan.get("Total Cost", 0)))


async def _rollback(conn: Connection) -> None:
    if conn.info.transaction_status != TransactionStatus.IDLE:
        with contextlib.suppress(psycopg.Error):
            await conn.rollback()


def _type_name(conn: Connection, oid: int) -> str:
    info = conn.adapters.types.get(oid)
    return info.name if info is not None else f"oid {oid}"


def _top_plan(row: Any) -> dict[str, Any]:
    try:
        document = next(iter(row.values())) if isinstance(row, dict) else row[0]
        plan = document[0]["Plan"]
    except (LookupError, TypeError, StopIteration):
        return {}
    return plan if isinstance(plan, dict) else {}

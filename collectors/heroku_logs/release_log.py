"""Durable deploy events: the releases a drain saw, one row per (app, version).

A small interface of its own (the alert state store is being reworked beside it), with a
table of its own, ``heroku_releases``, in the same database as ``state.url``:

* :class:`SqliteReleaseLog`: its own connection to the state file, used from a worker
  thread (nothing blocks the event loop);
* :class:`PostgresReleaseLog`: psycopg 3 async (the web and worker dynos of one app can
  share it; writes are idempotent upserts);
* :class:`MemoryReleaseLog`: for tests and ``sqlite:///:memory:``.

A later line for a known version only fills in what the first lacked (the commit of a
``Deploy`` line that came after its ``Release`` line). No user e-mail is ever stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from typing import Any, Protocol

from collectors.heroku_logs.releases import ReleaseEvent

CONNECT_TIMEOUT = 5
SCHEMA_LOCK = int.from_bytes(
    hashlib.sha256(b"app-monitor heroku_releases schema").digest()[:8], "big", signed=True
)
"""A transaction advisory lock around ``CREATE TABLE IF NOT EXISTS``: two dynos creating
the table at once would otherwise fail on ``pg_type``'s unique index."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS heroku_releases (
    app TEXT NOT NULL,
    version INTEGER NOT NULL,
    released_at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    commit_sha TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (app, version)
)
"""
UPSERT = """
INSERT INTO heroku_releases (app, version, released_at, kind, commit_sha, description)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (app, version) DO UPDATE SET
    kind = CASE WHEN heroku_releases.kind = 'release' THEN excluded.kind
                ELSE heroku_releases.kind END,
    commit_sha = CASE WHEN heroku_releases.commit_sha = '' THEN excluded.commit_sha
                      ELSE heroku_releases.commit_sha END,
    description = CASE WHEN heroku_releases.description = '' THEN excluded.description
                       ELSE heroku_releases.description END
"""
RECENT = """
SELECT app, version, released_at, kind, commit_sha, description FROM heroku_releases
WHERE app = ? ORDER BY version DESC LIMIT ?
"""
APPS = "SELECT DISTINCT app FROM heroku_releases"


class ReleaseLogError(Exception):
    pass


class ReleaseLog(Protocol):
    description: str

    async def open(self) -> None: ...

    async def record(self, event: ReleaseEvent) -> None:
        """Insert, or complete the row of a version already stored."""

    async def recent(self, app: str, limit: int = 20) -> list[ReleaseEvent]:
        """The newest releases of ``app``, newest first."""

    async def apps(self) -> list[str]: ...

    async def close(self) -> None: ...


def _event(row: tuple[Any, ...]) -> ReleaseEvent:
    app, version, released_at, kind, commit, description = row
    return ReleaseEvent(
        app=app,
        version=int(version),
        released_at=float(released_at),
        kind=kind,
        commit=commit,
        description=description,
    )


def _row(event: ReleaseEvent) -> tuple[Any, ...]:
    return (
        event.app,
        event.version,
        event.released_at,
        event.kind,
        event.commit,
        event.description,
    )


class MemoryReleaseLog:
    description = "memory"

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], ReleaseEvent] = {}

    async def open(self) -> None:
        pass

    async def record(self, event: ReleaseEvent) -> None:
        old = self.rows.get((event.app, event.version))
        if old is not None:
            event = ReleaseEvent(
                app=old.app,
                version=old.version,
                released_at=old.released_at,
                kind=event.kind if old.kind == "release" else old.kind,
                commit=old.commit or event.commit,
                description=old.description or event.description,
            )
        self.rows[(event.app, event.version)] = event

    async def recent(self, app: str, limit: int = 20) -> list[ReleaseEvent]:
        mine = [e for (a, _), e in self.rows.items() if a == app]
        return sorted(mine, key=lambda e: -e.version)[:limit]

    async def apps(self) -> list[str]:
        return sorted({a for a, _ in self.rows})

    async def close(self) -> None:
        pass


class SqliteReleaseLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"sqlite {path}"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _call_sync(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            try:
                if self._conn is None:
                    conn = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
                    conn.execute(SCHEMA)
                    conn.commit()
                    self._conn = conn
                return fn(self._conn, *args)
            except sqlite3.Error as exc:
                raise ReleaseLogError(f"{self.description}: {exc}") from None

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(self._call_sync, fn, *args)

    async def open(self) -> None:
        await self._call(lambda conn: None)

    async def record(self, event: ReleaseEvent) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(UPSERT, _row(event))
            conn.commit()

        await self._call(run)

    async def recent(self, app: str, limit: int = 20) -> list[ReleaseEvent]:
        def run(conn: sqlite3.Connection) -> list[ReleaseEvent]:
            return [_event(r) for r in conn.execute(RECENT, (app, limit)).fetchall()]

        result: list[ReleaseEvent] = await self._call(run)
        return result

    async def apps(self) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            return sorted(r[0] for r in conn.execute(APPS).fetchall())

        result: list[str] = await self._call(run)
        return result

    async def close(self) -> None:
        def run() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(run)


class PostgresReleaseLog:
    def __init__(self, url: str) -> None:
        self._url = url
        self.description = "postgresql"
        self._conn: Any = None

    async def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT + 1):
                    self._conn = await psycopg.AsyncConnection.connect(
                        self._url,
                        autocommit=True,
                        connect_timeout=CONNECT_TIMEOUT,
                        application_name="app-monitor-releases",
                        prepare_threshold=None,
                    )
            except Exception as exc:
                raise ReleaseLogError(
                    f"cannot connect to the release log: {type(exc).__name__}"
                ) from None
            try:
                async with asyncio.timeout(10), self._conn.transaction():
                    await self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    await self._conn.execute(SCHEMA)
            except (psycopg.Error, TimeoutError) as exc:
                await self._conn.close()
                self._conn = None
                raise ReleaseLogError(
                    f"cannot create the release table: {type(exc).__name__}"
                ) from None
        return self._conn

    async def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            conn = await self._connection()
            async with asyncio.timeout(10):
                cursor = await conn.execute(sql.replace("?", "%s"), args)
                if cursor.description is None:
                    return []
                rows: list[tuple[Any, ...]] = await cursor.fetchall()
                return rows
        except (psycopg.Error, TimeoutError) as exc:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            raise ReleaseLogError(f"release log: {type(exc).__name__}") from None

    async def open(self) -> None:
        await self._connection()

    async def record(self, event: ReleaseEvent) -> None:
        await self._execute(UPSERT, _row(event))

    async def recent(self, app: str, limit: int = 20) -> list[ReleaseEvent]:
        return [_event(r) for r in await self._execute(RECENT, (app, limit))]

    async def apps(self) -> list[str]:
        return sorted(r[0] for r in await self._execute(APPS))

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def open_release_log(state_url: str) -> ReleaseLog:
    """The release log in the database of ``state.url`` (not connected yet)."""
    if state_url.startswith("sqlite:"):
        path = state_url.removeprefix("sqlite://").removeprefix("/")
        if path in ("", ":memory:"):
            return MemoryReleaseLog()
        return SqliteReleaseLog(path)
    return PostgresReleaseLog(state_url)

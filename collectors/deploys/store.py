"""The deploy store: the drain's release log (markers) plus one table of verdicts.

``deploy_verdicts`` keeps each decided comparison (verdict and findings as JSON), so
``monitor deploy report`` can print it from any dyno and it survives restarts. The
classes extend the release log's three back ends (same connection, same database).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from collectors.deploys.compare import Finding
from collectors.heroku_logs.release_log import (
    MemoryReleaseLog,
    PostgresReleaseLog,
    ReleaseLog,
    SqliteReleaseLog,
)

VERDICTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS deploy_verdicts (
    app TEXT NOT NULL,
    version INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    decided_at DOUBLE PRECISION NOT NULL,
    findings TEXT NOT NULL,
    PRIMARY KEY (app, version)
)
"""
SAVE = """
INSERT INTO deploy_verdicts (app, version, verdict, decided_at, findings) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (app, version) DO UPDATE SET verdict = excluded.verdict,
    decided_at = excluded.decided_at, findings = excluded.findings
"""
LOAD = """
SELECT app, version, verdict, decided_at, findings FROM deploy_verdicts
WHERE app = ? ORDER BY version DESC LIMIT ?
"""

VERDICT_APPS = "SELECT DISTINCT app FROM deploy_verdicts"


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    app: str
    version: int
    verdict: str
    decided_at: float
    findings: tuple[Finding, ...]


def _encode(v: StoredVerdict) -> tuple[Any, ...]:
    body = json.dumps([asdict(f) for f in v.findings], allow_nan=False, default=str)
    return (v.app, v.version, v.verdict, v.decided_at, body)


def _decode(row: tuple[Any, ...]) -> StoredVerdict:
    app, version, verdict, decided_at, body = row
    findings = tuple(Finding(**item) for item in json.loads(body))
    return StoredVerdict(app, int(version), verdict, float(decided_at), findings)


class DeployStore(ReleaseLog, Protocol):
    async def save_verdict(self, verdict: StoredVerdict) -> None: ...

    async def verdicts(self, app: str, limit: int = 20) -> list[StoredVerdict]: ...

    async def verdict_apps(self) -> list[str]: ...


class MemoryDeployStore(MemoryReleaseLog):
    def __init__(self) -> None:
        super().__init__()
        self.saved: dict[tuple[str, int], StoredVerdict] = {}

    async def save_verdict(self, verdict: StoredVerdict) -> None:
        self.saved[(verdict.app, verdict.version)] = _decode(_encode(verdict))

    async def verdicts(self, app: str, limit: int = 20) -> list[StoredVerdict]:
        mine = [v for (a, _), v in self.saved.items() if a == app]
        return sorted(mine, key=lambda v: -v.version)[:limit]

    async def verdict_apps(self) -> list[str]:
        return sorted({a for a, _ in self.saved})


class SqliteDeployStore(SqliteReleaseLog):
    async def save_verdict(self, verdict: StoredVerdict) -> None:
        def run(conn: Any) -> None:
            conn.execute(VERDICTS_SCHEMA)
            conn.execute(SAVE, _encode(verdict))
            conn.commit()

        await self._call(run)

    async def verdicts(self, app: str, limit: int = 20) -> list[StoredVerdict]:
        def run(conn: Any) -> list[StoredVerdict]:
            conn.execute(VERDICTS_SCHEMA)
            return [_decode(r) for r in conn.execute(LOAD, (app, limit)).fetchall()]

        result: list[StoredVerdict] = await self._call(run)
        return result

    async def verdict_apps(self) -> list[str]:
        def run(conn: Any) -> list[str]:
            conn.execute(VERDICTS_SCHEMA)
            return sorted(r[0] for r in conn.execute(VERDICT_APPS).fetchall())

        result: list[str] = await self._call(run)
        return result


class PostgresDeployStore(PostgresReleaseLog):
    _ready = False

    async def _schema(self) -> None:
        if not self._ready:
            await self._execute(VERDICTS_SCHEMA)
            self._ready = True

    async def save_verdict(self, verdict: StoredVerdict) -> None:
        await self._schema()
        await self._execute(SAVE, _encode(verdict))

    async def verdicts(self, app: str, limit: int = 20) -> list[StoredVerdict]:
        await self._schema()
        return [_decode(r) for r in await self._execute(LOAD, (app, limit))]

    async def verdict_apps(self) -> list[str]:
        await self._schema()
        return sorted(r[0] for r in await self._execute(VERDICT_APPS))


def open_deploy_store(state_url: str) -> DeployStore:
    """The deploy store in the database of ``state.url`` (not connected yet)."""
    if state_url.startswith("sqlite:"):
        path = state_url.removeprefix("sqlite://").removeprefix("/")
        if path in ("", ":memory:"):
            return MemoryDeployStore()
        return SqliteDeployStore(path)
    return PostgresDeployStore(state_url)

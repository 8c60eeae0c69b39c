"""Streaming replication, seen from the primary and from a standby.

On a primary::

    pg_replication_standbys{target="primary"} 1.0
    pg_replication_lag_bytes{target="primary",standby="replica"} 16777216.0
    pg_replication_lag_seconds{target="primary",standby="replica",kind="replay"} 2.5

On a standby::

    pg_standby_receiver_up{target="replica"} 1.0
    pg_standby_replay_lag_bytes{target="replica"} 0.0
    pg_standby_last_replay_age_seconds{target="replica"} 0.0

Primary: one series per walsender that is not a base backup, named by its
``application_name`` (made unique with the client address if needed). The byte lag is
``pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)``. ``write/flush/replay_lag`` turn
NULL some seconds after an idle primary's standby caught up; NULL then means 0, but only
when that kind's byte lag is 0 too: otherwise the lag is unknown and left out.

Standby: the receiver is up when ``pg_stat_wal_receiver`` has a streaming row (no row
means disconnected). ``now() - pg_last_xact_replay_timestamp()`` grows on an idle
primary although nothing is behind, so the age is 0 while the receiver is up and
everything received has been replayed; with the receiver down it is the raw age (it
grows: a disconnected standby must not look healthy), and while replay is behind it is
the raw age too.

Without pg_read_all_stats the LSNs and lags are hidden (NULL): those series are left
out and the reason is logged once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from collectors.postgres.job import PostgresJob
from collectors.postgres.notices import READ_ALL_STATS_SQL
from monitor.kernel.snapshot import Sample, gauge

STANDBYS = gauge(
    "pg_replication_standbys", "Standbys connected to this primary (walsenders, not backups)"
)
LAG_BYTES = gauge(
    "pg_replication_lag_bytes", "WAL bytes the standby has not replayed yet", "standby"
)
LAG_SECONDS = gauge(
    "pg_replication_lag_seconds",
    "Time until recent WAL was written/flushed/replayed on the standby",
    "standby",
    "kind",
)
RECEIVER_UP = gauge("pg_standby_receiver_up", "1 if the WAL receiver is streaming, else 0")
REPLAY_LAG_BYTES = gauge("pg_standby_replay_lag_bytes", "WAL bytes received but not yet replayed")
LAST_REPLAY_AGE = gauge(
    "pg_standby_last_replay_age_seconds",
    "Time since the last replayed transaction; 0 while caught up with a live receiver",
)

ROLE_SQL = f"SELECT pg_is_in_recovery() AS standby, {READ_ALL_STATS_SQL} AS can_read_all"

PRIMARY_SQL = """
SELECT application_name, host(client_addr) AS client_addr, pid,
  pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn)::float8 AS write_bytes,
  pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::float8 AS flush_bytes,
  pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS replay_bytes,
  extract(epoch FROM write_lag)::float8 AS write_lag,
  extract(epoch FROM flush_lag)::float8 AS flush_lag,
  extract(epoch FROM replay_lag)::float8 AS replay_lag
FROM pg_stat_replication
WHERE state IS DISTINCT FROM 'backup'
ORDER BY application_name, client_addr, pid
"""

STANDBY_SQL = """
SELECT
  (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS status,
  (SELECT pid FROM pg_stat_wal_receiver LIMIT 1) AS receiver_pid,
  pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 AS backlog,
  extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age
"""

KINDS = ("write", "flush", "replay")


def standby_names(rows: Sequence[dict[str, Any]]) -> list[str]:
    """``application_name``, disambiguated by client address, then pid."""
    base = [r["application_name"] or "unnamed" for r in rows]
    counts = Counter(base)
    named = [
        f"{b}@{r['client_addr'] or 'local'}" if counts[b] > 1 else b
        for b, r in zip(base, rows, strict=True)
    ]
    counts = Counter(named)
    return [f"{n}#{r['pid']}" if counts[n] > 1 else n for n, r in zip(named, rows, strict=True)]


def lag_seconds(lag: float | None, behind_bytes: float | None) -> float | None:
    """NULL lag means caught up only when nothing is behind; otherwise it is unknown."""
    if lag is not None:
        return lag
    if behind_bytes is not None and behind_bytes <= 0:
        return 0.0
    return None


def receiver_up(status: str | None, pid: int | None) -> bool:
    # without pg_read_all_stats every column but pid is NULL: a running receiver counts
    return status == "streaming" or (status is None and pid is not None)


def last_replay_age(up: bool, backlog: float | None, age: float | None) -> float | None:
    """The idle-primary guard: caught up with a live receiver is 0, never a growing age."""
    if up and backlog is not None and backlog <= 0:
        return 0.0
    return age


class ReplicationJob(PostgresJob):
    collector = "postgres_replication"

    async def collect(self) -> Sequence[Sample]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(ROLE_SQL)
            role = await cur.fetchone()
            assert role is not None
            if role["standby"]:
                cur = await conn.execute(STANDBY_SQL)
                row = await cur.fetchone()
                assert row is not None
                return self._standby(row, role["can_read_all"])
            cur = await conn.execute(PRIMARY_SQL)
            rows = await cur.fetchall()
        return self._primary(rows, role["can_read_all"])

    def _primary(self, rows: Sequence[dict[str, Any]], can_read_all: bool) -> list[Sample]:
        self._notices.privilege(
            "replication", can_read_all, "standbys' LSNs and lags are hidden and not exported"
        )
        t = self.target
        out = [STANDBYS(len(rows), target=t)]
        for name, row in zip(standby_names(rows), rows, strict=True):
            if row["replay_bytes"] is not None:
                out.append(LAG_BYTES(max(0.0, row["replay_bytes"]), name, target=t))
            for kind in KINDS:
                seconds = lag_seconds(row[f"{kind}_lag"], row[f"{kind}_bytes"])
                if seconds is not None:
                    out.append(LAG_SECONDS(seconds, name, kind, target=t))
        return out

    def _standby(self, row: dict[str, Any], can_read_all: bool) -> list[Sample]:
        self._notices.privilege("replication", can_read_all, "the WAL receiver's status is hidden")
        t = self.target
        up = receiver_up(row["status"], row["receiver_pid"])
        out = [RECEIVER_UP(1 if up else 0, target=t)]
        backlog = row["backlog"]
        if backlog is not None:
            out.append(REPLAY_LAG_BYTES(max(0.0, backlog), target=t))
        age = last_replay_age(up, backlog, row["replay_age"])
        if age is not None:
            out.append(LAST_REPLAY_AGE(max(0.0, age), target=t))
        return out

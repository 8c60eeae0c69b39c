"""Connections and saturation, long transactions, blocked sessions.

Exposition::

    pg_connections{target="primary",datname="app",state="active"} 3.0
    pg_connections{target="primary",datname="app",state="idle_in_transaction"} 1.0
    pg_connections_max{target="primary"} 97.0
    pg_connections_utilization_ratio{target="primary"} 0.05
    pg_oldest_transaction_seconds{target="primary"} 12.5
    pg_oldest_idle_in_transaction_seconds{target="primary"} 4.1
    pg_longest_query_seconds{target="primary"} 0.2
    pg_blocked_sessions{target="primary"} 1.0

Only client backends count (not autovacuum, walsenders or background workers), and the
monitor's own querying session is left out of every figure except the utilisation,
where it does occupy a slot. ``pg_connections_max`` is ``max_connections`` minus
``superuser_reserved_connections`` and (PG 16+) ``reserved_connections``.

The oldest transaction is measured from ``xact_start`` (a transaction issuing short
queries is still old), idle in transaction from ``state_change``, the longest query from
``query_start`` of active sessions. With no such session the value is 0. Blocked
sessions come from ``pg_blocking_pids()``, so relation locks (a migration's ACCESS
EXCLUSIVE) count, not only transaction-id waits.

Without pg_read_all_stats (pg_monitor) other users' sessions show no state or start
times: they are counted as ``state="unknown"``, the three age metrics are left out
rather than computed from the monitor's own sessions, and the reason is logged once.
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors.postgres.job import PostgresJob
from collectors.postgres.notices import READ_ALL_STATS_SQL
from monitor.kernel.snapshot import Sample, gauge

CONNECTIONS = gauge(
    "pg_connections", "Client connections by database and state", "datname", "state"
)
CONNECTIONS_MAX = gauge(
    "pg_connections_max", "Connection slots available to ordinary roles (minus reserved)"
)
UTILIZATION = gauge(
    "pg_connections_utilization_ratio", "Client connections over pg_connections_max"
)
OLDEST_XACT = gauge(
    "pg_oldest_transaction_seconds", "Age of the oldest open transaction (from xact_start)"
)
OLDEST_IDLE_XACT = gauge(
    "pg_oldest_idle_in_transaction_seconds",
    "Longest time a session has been idle inside an open transaction",
)
LONGEST_QUERY = gauge("pg_longest_query_seconds", "Run time of the longest active query")
BLOCKED = gauge("pg_blocked_sessions", "Sessions waiting for a lock held by another session")

STATES = {
    "active": "active",
    "idle": "idle",
    "idle in transaction": "idle_in_transaction",
    "idle in transaction (aborted)": "idle_in_transaction_aborted",
    "fastpath function call": "fastpath_function_call",
    "disabled": "disabled",
}
"""pg_stat_activity.state -> the ``state`` label; NULL (hidden) becomes ``unknown``."""

# A hidden session (no privilege) has backend_type NULL; one with a database is a client.
_CLIENT = "(backend_type = 'client backend' OR (backend_type IS NULL AND datname IS NOT NULL))"

COUNTS_SQL = f"""
SELECT datname, state, count(*) AS n
FROM pg_stat_activity
WHERE {_CLIENT} AND pid <> pg_backend_pid()
GROUP BY datname, state
"""

SUMMARY_SQL = f"""
SELECT
  current_setting('max_connections')::int
    - current_setting('superuser_reserved_connections')::int
    - coalesce(current_setting('reserved_connections', true)::int, 0) AS max_available,
  count(*) + 1 AS used,
  coalesce(extract(epoch FROM max(now() - xact_start)), 0)::float8 AS oldest_xact,
  coalesce(extract(epoch FROM max(now() - state_change) FILTER (
    WHERE state IN ('idle in transaction', 'idle in transaction (aborted)'))), 0)::float8
    AS oldest_idle_xact,
  coalesce(extract(epoch FROM max(now() - query_start) FILTER (WHERE state = 'active')), 0)
    ::float8 AS longest_query,
  count(*) FILTER (
    WHERE (wait_event_type = 'Lock' OR state IS NULL)
      AND cardinality(pg_blocking_pids(pid)) > 0) AS blocked,
  {READ_ALL_STATS_SQL} AS can_read_all
FROM pg_stat_activity
WHERE {_CLIENT} AND pid <> pg_backend_pid()
"""

DATABASES_SQL = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate"


class ActivityJob(PostgresJob):
    collector = "postgres_activity"

    async def collect(self) -> Sequence[Sample]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(SUMMARY_SQL)
            summary = await cur.fetchone()
            cur = await conn.execute(COUNTS_SQL)
            counts = await cur.fetchall()
            cur = await conn.execute(DATABASES_SQL)
            databases = [r["datname"] for r in await cur.fetchall()]
        assert summary is not None
        t = self.target
        by_db: dict[str, dict[str, float]] = {
            db: dict.fromkeys(STATES.values(), 0.0) for db in databases
        }
        for row in counts:
            datname = row["datname"] or ""
            state = STATES.get(row["state"], "unknown") if row["state"] is not None else "unknown"
            per_state = by_db.setdefault(datname, dict.fromkeys(STATES.values(), 0.0))
            per_state[state] = per_state.get(state, 0.0) + row["n"]
        out = [
            CONNECTIONS(n, db, state, target=t)
            for db, states in sorted(by_db.items())
            for state, n in states.items()
        ]
        max_available = summary["max_available"]
        out.append(CONNECTIONS_MAX(max_available, target=t))
        if max_available > 0:
            out.append(UTILIZATION(summary["used"] / max_available, target=t))
        out.append(BLOCKED(summary["blocked"], target=t))
        hidden = "other sessions' state and start times are hidden; ages are not exported"
        if self._notices.privilege("activity", summary["can_read_all"], hidden):
            out += [
                OLDEST_XACT(summary["oldest_xact"], target=t),
                OLDEST_IDLE_XACT(summary["oldest_idle_xact"], target=t),
                LONGEST_QUERY(summary["longest_query"], target=t),
            ]
        return out

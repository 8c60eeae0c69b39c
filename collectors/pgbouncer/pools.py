"""PgBouncer pools, databases and client limits from ``SHOW POOLS/DATABASES/LISTS/CONFIG``.

Columns are read by name, so every version from 1.18 to 1.24 works and columns added
later are ignored. Exposition::

    pgbouncer_pool_clients{target="pool",database="app",user="app",state="active"} 2.0
    pgbouncer_pool_clients{target="pool",database="app",user="app",state="waiting"} 3.0
    pgbouncer_pool_servers{target="pool",database="app",user="app",state="active"} 2.0
    pgbouncer_pool_servers{target="pool",database="app",user="app",state="idle"} 0.0
    pgbouncer_pool_servers{target="pool",database="app",user="app",state="used"} 0.0
    pgbouncer_pool_servers{target="pool",database="app",user="app",state="tested"} 0.0
    pgbouncer_pool_servers{target="pool",database="app",user="app",state="login"} 0.0
    pgbouncer_pool_max_wait_seconds{target="pool",database="app",user="app"} 0.73
    pgbouncer_pool_utilization_ratio{target="pool",database="app",user="app"} 1.0
    pgbouncer_database_pool_size{target="pool",database="app"} 2.0
    pgbouncer_database_reserve_pool_size{target="pool",database="app"} 0.0
    pgbouncer_database_max_connections{target="pool",database="app"} 0.0
    pgbouncer_database_current_connections{target="pool",database="app"} 2.0
    pgbouncer_database_paused{target="pool",database="app"} 0.0
    pgbouncer_database_disabled{target="pool",database="app"} 0.0
    pgbouncer_client_connections{target="pool"} 6.0
    pgbouncer_client_connections_max{target="pool"} 100.0
    pgbouncer_client_utilization_ratio{target="pool"} 0.06
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from collectors.running_totals import ratio
from monitor.kernel.snapshot import Sample, gauge

POOL_CLIENTS = gauge(
    "pgbouncer_pool_clients", "Client connections of a pool by state", "database", "user", "state"
)
POOL_SERVERS = gauge(
    "pgbouncer_pool_servers", "Server connections of a pool by state", "database", "user", "state"
)
POOL_MAX_WAIT = gauge(
    "pgbouncer_pool_max_wait_seconds",
    "How long the oldest waiting client of a pool has waited",
    "database",
    "user",
)
POOL_UTILIZATION = gauge(
    "pgbouncer_pool_utilization_ratio",
    "Active server connections of a pool over its database's pool_size",
    "database",
    "user",
)
DB_POOL_SIZE = gauge("pgbouncer_database_pool_size", "Effective pool_size", "database")
DB_RESERVE_POOL = gauge("pgbouncer_database_reserve_pool_size", "reserve_pool", "database")
DB_MAX_CONNECTIONS = gauge(
    "pgbouncer_database_max_connections", "max_db_connections (0 = unlimited)", "database"
)
DB_CURRENT_CONNECTIONS = gauge(
    "pgbouncer_database_current_connections", "Server connections to the database", "database"
)
DB_PAUSED = gauge("pgbouncer_database_paused", "1 if the database is paused", "database")
DB_DISABLED = gauge("pgbouncer_database_disabled", "1 if the database is disabled", "database")
CLIENTS = gauge("pgbouncer_client_connections", "Client connections in use (SHOW LISTS)")
CLIENTS_MAX = gauge("pgbouncer_client_connections_max", "max_client_conn")
CLIENT_UTILIZATION = gauge(
    "pgbouncer_client_utilization_ratio", "Client connections over max_client_conn"
)

CLIENT_STATES = {"active": "cl_active", "waiting": "cl_waiting"}
SERVER_STATES = {
    "active": "sv_active",
    "idle": "sv_idle",
    "used": "sv_used",
    "tested": "sv_tested",
    "login": "sv_login",
}

Row = Mapping[str, Any]


def number(row: Row, column: str) -> float:
    """A numeric column, 0 when absent (older version) or NULL."""
    value = row.get(column)
    if value is None or value == "":
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def max_wait_seconds(row: Row) -> float:
    """``maxwait`` is whole seconds; ``maxwait_us`` (1.8+) holds the fraction."""
    return number(row, "maxwait") + number(row, "maxwait_us") / 1e6


def pool_samples(target: str, pools: Sequence[Row], databases: Sequence[Row]) -> Iterator[Sample]:
    pool_size = {str(d.get("name")): number(d, "pool_size") for d in databases}
    for row in pools:
        db, user = str(row.get("database")), str(row.get("user"))
        for state, column in CLIENT_STATES.items():
            yield POOL_CLIENTS(number(row, column), db, user, state, target=target)
        for state, column in SERVER_STATES.items():
            yield POOL_SERVERS(number(row, column), db, user, state, target=target)
        yield POOL_MAX_WAIT(max_wait_seconds(row), db, user, target=target)
        utilization = ratio(number(row, "sv_active"), pool_size.get(db, 0.0))
        if utilization is not None:
            yield POOL_UTILIZATION(utilization, db, user, target=target)


def database_samples(target: str, databases: Sequence[Row]) -> Iterator[Sample]:
    for row in databases:
        db = str(row.get("name"))
        yield DB_POOL_SIZE(number(row, "pool_size"), db, target=target)
        yield DB_RESERVE_POOL(number(row, "reserve_pool"), db, target=target)
        yield DB_MAX_CONNECTIONS(number(row, "max_connections"), db, target=target)
        yield DB_CURRENT_CONNECTIONS(number(row, "current_connections"), db, target=target)
        yield DB_PAUSED(number(row, "paused"), db, target=target)
        yield DB_DISABLED(number(row, "disabled"), db, target=target)


def client_samples(target: str, lists: Sequence[Row], config: Sequence[Row]) -> Iterator[Sample]:
    used = next((number(r, "items") for r in lists if r.get("list") == "used_clients"), None)
    limit = next((number(r, "value") for r in config if r.get("key") == "max_client_conn"), None)
    if used is not None:
        yield CLIENTS(used, target=target)
    if limit is not None:
        yield CLIENTS_MAX(limit, target=target)
    if used is not None and limit is not None:
        utilization = ratio(used, limit)
        if utilization is not None:
            yield CLIENT_UTILIZATION(utilization, target=target)

"""The slow ``pg:diagnose`` checks: sequences near exhaustion, unused indexes, bloat.

Exposition (connected database only; at most ``max_series`` worst objects per check)::

    pg_sequence_used_ratio{target="primary",datname="app",sequence="public.orders_id_seq",
                           column="public.orders.id"} 0.93
    pg_sequences_unreadable{target="primary",datname="app"} 0.0
    pg_unused_indexes{target="primary",datname="app"} 2.0
    pg_unused_index_bytes{target="primary",datname="app",table="public.orders",
                          index="public.orders_note_idx"} 8.2e6
    pg_table_bloat_ratio{target="primary",datname="app",table="public.events"} 9.7
    pg_table_bloat_bytes{target="primary",datname="app",table="public.events"} 3.1e8
    pg_index_bloat_ratio{target="primary",datname="app",index="public.events_pkey"} 2.4
    pg_index_bloat_bytes{target="primary",datname="app",index="public.events_pkey"} 1.2e7

Sequences are measured against the *column* that uses them (found through the owned-by
/ identity dependency and through ``nextval()`` column defaults): a bigint sequence
behind an integer column runs out at 2^31-1, not 2^63-1. The limit is the smaller of the
sequence's own bound and the column type's; a never-used sequence is at 0. Reading a
sequence's position needs SELECT or USAGE on it, which pg_monitor does not give: such
sequences are counted in ``pg_sequences_unreadable`` instead of being reported as 0.

Unused indexes: ``idx_scan = 0`` since the statistics were last reset, not unique, not a
primary key, not backing a constraint, at least ``unused_index_min_bytes``. Scans on a
standby are counted on the standby only: check each server.

Bloat is the usual estimate from ``pg_class`` and ``pg_stats`` (row and key widths,
fillfactor, page and tuple overheads; btree indexes on plain columns): ratio = pages /
expected pages, bytes = the difference. ``pg_stats`` shows only the tables the role may
SELECT from; the others are skipped and the reason is logged once.

This job uses a connection of its own (closed after each run) whose statement timeout is
the job's timeout, so it never holds up the cheap collectors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from collectors.postgres.config import DiagnoseConfig, PostgresTarget
from collectors.postgres.connection import PostgresPool
from collectors.postgres.notices import Notices
from monitor.kernel.snapshot import Sample, gauge
from monitor.kernel.source import CollectorJob

SEQUENCE_USED = gauge(
    "pg_sequence_used_ratio",
    "Sequence position over the limit of the column type (and sequence) that uses it",
    "datname",
    "sequence",
    "column",
)
SEQUENCES_UNREADABLE = gauge(
    "pg_sequences_unreadable",
    "Sequences used by integer columns that the monitoring role may not read",
    "datname",
)
UNUSED_INDEXES = gauge(
    "pg_unused_indexes", "Never-scanned non-unique indexes above the size threshold", "datname"
)
UNUSED_INDEX_BYTES = gauge(
    "pg_unused_index_bytes", "Size of a never-scanned non-unique index", "datname", "table", "index"
)
TABLE_BLOAT_RATIO = gauge(
    "pg_table_bloat_ratio", "Estimated table pages over the pages its rows need", "datname", "table"
)
TABLE_BLOAT_BYTES = gauge(
    "pg_table_bloat_bytes", "Estimated wasted space in the table", "datname", "table"
)
INDEX_BLOAT_RATIO = gauge(
    "pg_index_bloat_ratio",
    "Estimated btree index pages over the pages it needs",
    "datname",
    "index",
)
INDEX_BLOAT_BYTES = gauge(
    "pg_index_bloat_bytes", "Estimated wasted space in the btree index", "datname", "index"
)

TYPE_LIMITS = {"smallint": (-32768, 32767), "integer": (-(2**31), 2**31 - 1)}
BIGINT_LIMITS = (-(2**63), 2**63 - 1)

SEQUENCES_SQL = """
WITH uses AS (
  SELECT d.objid AS seq, d.refobjid AS tbl, d.refobjsubid AS attnum
  FROM pg_depend d
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
  UNION
  SELECT d.refobjid, ad.adrelid, ad.adnum
  FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
  WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
)
SELECT current_database() AS datname,
  quote_ident(sn.nspname) || '.' || quote_ident(sc.relname) AS sequence,
  quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) || '.' || quote_ident(a.attname)
    AS column,
  format_type(a.atttypid, NULL) AS column_type,
  s.seqincrement AS increment, s.seqmin AS min_value, s.seqmax AS max_value,
  has_sequence_privilege(sc.oid, 'SELECT,USAGE') AS readable,
  CASE WHEN has_sequence_privilege(sc.oid, 'SELECT,USAGE')
       THEN pg_sequence_last_value(sc.oid) END AS last_value
FROM uses u
JOIN pg_class sc ON sc.oid = u.seq AND sc.relkind = 'S'
JOIN pg_sequence s ON s.seqrelid = sc.oid
JOIN pg_namespace sn ON sn.oid = sc.relnamespace
JOIN pg_class tc ON tc.oid = u.tbl
JOIN pg_namespace tn ON tn.oid = tc.relnamespace
JOIN pg_attribute a ON a.attrelid = u.tbl AND a.attnum = u.attnum AND NOT a.attisdropped
WHERE a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
"""

UNUSED_INDEXES_SQL = """
SELECT current_database() AS datname,
  quote_ident(s.schemaname) || '.' || quote_ident(s.relname) AS table,
  quote_ident(s.schemaname) || '.' || quote_ident(s.indexrelname) AS index,
  pg_relation_size(s.indexrelid)::float8 AS bytes
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
  AND pg_relation_size(s.indexrelid) >= %(min_bytes)s
ORDER BY bytes DESC, index
"""

# Estimates after the well-known pgsql-bloat-estimation queries: a heap tuple is a 23-byte
# header (+ null bitmap) aligned to 8, the data, and a 4-byte line pointer; a page has a
# 24-byte header and is filled to fillfactor. A btree leaf tuple is an 8-byte header plus
# the aligned key; pages keep 16 bytes of special space and are filled to 90%.
TABLE_BLOAT_SQL = """
WITH widths AS (
  SELECT schemaname, tablename, sum((1 - null_frac) * avg_width) AS data_width,
         max(null_frac) > 0 AS has_nulls, count(*) AS ncols
  FROM pg_stats GROUP BY schemaname, tablename
), t AS (
  SELECT n.nspname, c.relname, c.relpages::float8 AS pages, c.reltuples::float8 AS tuples,
    coalesce((SELECT substring(o FROM 'fillfactor=(\\d+)')::float8
              FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%%'), 100) AS fillfactor,
    23 + CASE WHEN w.has_nulls THEN ceil(w.ncols / 8.0) ELSE 0 END AS header,
    w.data_width
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN widths w ON w.schemaname = n.nspname AND w.tablename = c.relname
  WHERE c.relkind IN ('r', 'm') AND c.reltuples > 0 AND c.relpages > 0
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
), e AS (
  SELECT *, ceil(tuples / greatest(1, floor(
      (current_setting('block_size')::float8 - 24) * fillfactor / 100
      / (ceil(header / 8) * 8 + ceil(data_width / 8) * 8 + 4)))) AS expected
  FROM t
)
SELECT current_database() AS datname,
  quote_ident(nspname) || '.' || quote_ident(relname) AS name,
  pages / greatest(expected, 1) AS ratio,
  greatest(pages - expected, 0) * current_setting('block_size')::float8 AS bytes
FROM e
WHERE (pages - expected) * current_setting('block_size')::float8 >= %(min_bytes)s
ORDER BY bytes DESC, name LIMIT %(limit)s
"""

INDEX_BLOAT_SQL = """
WITH keys AS (
  SELECT i.indexrelid, i.indrelid, k.attnum
  FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) AS k(attnum)
), plain AS (
  SELECT indexrelid FROM keys GROUP BY indexrelid HAVING min(attnum) > 0
), widths AS (
  SELECT k.indexrelid, sum((1 - s.null_frac) * s.avg_width) AS data_width, count(*) AS nkeys
  FROM keys k
  JOIN plain p ON p.indexrelid = k.indexrelid
  JOIN pg_class tc ON tc.oid = k.indrelid
  JOIN pg_namespace tn ON tn.oid = tc.relnamespace
  JOIN pg_attribute a ON a.attrelid = k.indrelid AND a.attnum = k.attnum
  JOIN pg_stats s ON s.schemaname = tn.nspname AND s.tablename = tc.relname
                 AND s.attname = a.attname
  GROUP BY k.indexrelid
), e AS (
  SELECT n.nspname, c.relname, c.relpages::float8 AS pages,
    1 + ceil(c.reltuples / greatest(1, floor(
      (current_setting('block_size')::float8 - 24 - 16) * 0.9
      / (8 + ceil(w.data_width / 8) * 8 + 4)))) AS expected
  FROM widths w
  JOIN pg_class c ON c.oid = w.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_am am ON am.oid = c.relam AND am.amname = 'btree'
  JOIN pg_index i ON i.indexrelid = c.oid
  WHERE c.reltuples > 0 AND c.relpages > 1
    AND (SELECT count(*) FROM unnest(i.indkey::int2[])) = w.nkeys
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
)
SELECT current_database() AS datname,
  quote_ident(nspname) || '.' || quote_ident(relname) AS name,
  pages / greatest(expected, 1) AS ratio,
  greatest(pages - expected, 0) * current_setting('block_size')::float8 AS bytes
FROM e
WHERE (pages - expected) * current_setting('block_size')::float8 >= %(min_bytes)s
ORDER BY bytes DESC, name LIMIT %(limit)s
"""

UNREADABLE_TABLES_SQL = """
SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND NOT has_table_privilege(c.oid, 'SELECT')
"""
UNREADABLE_SEQUENCES_SQL = """
SELECT count(*) FILTER (WHERE NOT has_sequence_privilege(seqrelid, 'SELECT,USAGE')) AS n
FROM pg_sequence
"""


def sequence_used_ratio(
    column_type: str, increment: int, min_value: int, max_value: int, last_value: int | None
) -> float:
    """How far the sequence has gone towards the nearer of its own and its column's limit."""
    col_min, col_max = TYPE_LIMITS.get(column_type, BIGINT_LIMITS)
    if last_value is None:
        return 0.0
    if increment > 0:
        limit = min(max_value, col_max)
        return max(0.0, last_value / limit) if limit > 0 else 1.0
    limit = max(min_value, col_min)
    return max(0.0, last_value / limit) if limit < 0 else 1.0


def unreadable_tables_warning(count: int) -> str:
    return (
        f"bloat estimate skips {count} tables the monitoring role may not SELECT from "
        "(pg_stats hides them; see docs/postgres.md)"
    )


def unreadable_sequences_warning(count: int) -> str:
    return (
        f"{count} sequences are not readable by the monitoring role, so their exhaustion "
        "is not checked (GRANT SELECT ON ALL SEQUENCES ...; see deploy/sql/monitoring-role.sql)"
    )


class DiagnoseJob(CollectorJob):
    collector = "postgres_diagnose"

    def __init__(
        self,
        target: PostgresTarget,
        interval: float,
        timeout: float,
        notices: Notices,
        config: DiagnoseConfig,
    ) -> None:
        # a connection of its own, with the job's deadline as statement timeout
        own = target.model_copy(update={"statement_timeout": timeout, "max_connections": 1})
        self._pool = PostgresPool(own)
        self.target = target.name
        self.interval = interval
        self.timeout = timeout
        self._notices = notices
        self._config = config

    async def collect(self) -> Sequence[Sample]:
        params = {"limit": self._config.max_series}
        try:
            async with self._pool.connection() as conn:
                # pg_relation_size() takes AccessShareLock: never queue behind a migration
                await conn.execute("SET lock_timeout = '2s'")
                db = await (await conn.execute("SELECT current_database() AS d")).fetchone()
                sequences = await (await conn.execute(SEQUENCES_SQL)).fetchall()
                unused = await (
                    await conn.execute(
                        UNUSED_INDEXES_SQL, {"min_bytes": self._config.unused_index_min_bytes}
                    )
                ).fetchall()
                bloat_params = {**params, "min_bytes": self._config.bloat_min_bytes}
                tables = await (await conn.execute(TABLE_BLOAT_SQL, bloat_params)).fetchall()
                indexes = await (await conn.execute(INDEX_BLOAT_SQL, bloat_params)).fetchall()
                hidden = await (await conn.execute(UNREADABLE_TABLES_SQL)).fetchone()
        finally:
            await self._pool.close()
        assert hidden is not None and db is not None
        datname: str = db["d"]
        out = self._sequences(datname, sequences)
        out += self._unused(datname, unused)
        t = self.target
        for row in tables:
            out.append(TABLE_BLOAT_RATIO(row["ratio"], row["datname"], row["name"], target=t))
            out.append(TABLE_BLOAT_BYTES(row["bytes"], row["datname"], row["name"], target=t))
        for row in indexes:
            out.append(INDEX_BLOAT_RATIO(row["ratio"], row["datname"], row["name"], target=t))
            out.append(INDEX_BLOAT_BYTES(row["bytes"], row["datname"], row["name"], target=t))
        if hidden["n"]:
            self._notices.warn("bloat", unreadable_tables_warning(hidden["n"]))
        else:
            self._notices.clear("bloat")
        return out

    def _sequences(self, datname: str, rows: Sequence[dict[str, Any]]) -> list[Sample]:
        t = self.target
        readable = [r for r in rows if r["readable"]]
        unreadable = len(rows) - len(readable)
        scored = sorted(
            (
                (
                    sequence_used_ratio(
                        r["column_type"],
                        r["increment"],
                        r["min_value"],
                        r["max_value"],
                        r["last_value"],
                    ),
                    r,
                )
                for r in readable
            ),
            key=lambda pair: (-pair[0], pair[1]["sequence"], pair[1]["column"]),
        )[: self._config.max_series]
        out = [
            SEQUENCE_USED(ratio, r["datname"], r["sequence"], r["column"], target=t)
            for ratio, r in scored
        ]
        out.append(SEQUENCES_UNREADABLE(unreadable, datname, target=t))
        if unreadable:
            self._notices.warn("sequences", unreadable_sequences_warning(unreadable))
        else:
            self._notices.clear("sequences")
        return out

    def _unused(self, datname: str, rows: Sequence[dict[str, Any]]) -> list[Sample]:
        t = self.target
        out = [UNUSED_INDEXES(len(rows), datname, target=t)]
        for r in rows[: self._config.max_series]:
            out.append(
                UNUSED_INDEX_BYTES(r["bytes"], r["datname"], r["table"], r["index"], target=t)
            )
        return out

    def on_timeout(self) -> None:
        pass  # the pool's connection is closed by collect()'s finally clause

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._pool.close()

"""pg_stat_statements: top N statements by execution time, the rest summed as ``other``.

Exposition (``queryid`` is the top N's own id, or ``other`` for everything else)::

    pg_stat_statements_calls_total{target="primary",datname="app",queryid="-8817..."} 1200.0
    pg_stat_statements_exec_seconds_total{target="primary",datname="app",queryid="other"} 3.2
    pg_stat_statements_rows_total{...} 1200.0
    pg_stat_statements_shared_blks_hit_total{...} 5400.0
    pg_stat_statements_shared_blks_read_total{...} 12.0
    pg_stat_statements_blk_read_seconds_total{...} 0.01
    pg_stat_statements_blk_write_seconds_total{...} 0.0
    pg_stat_statements_available{target="primary"} 1.0
    pg_stat_statements_entries{target="primary"} 5012.0
    pg_stat_statements_dealloc_total{target="primary"} 21.0
    pg_stat_statements_query_info{target="primary",datname="app",queryid="-8817...",
                                  query="SELECT * FROM orders WHERE id = $1"} 1

What is read, and how:

* The extension's schema and version are looked up in ``pg_extension`` (it may live in
  ``heroku_ext``, be missing in the connected database, or be older than the server), and
  the columns are chosen by the *extension* version: ``total_time`` before 1.8,
  ``toplevel`` from 1.9, ``shared_blk_*_time`` + ``local_blk_*_time`` and ``stats_since``
  from 1.11. The lookup is cached and redone when the statement fails with an undefined
  function/column/schema (extension updated or dropped) and every few minutes.
* The main query calls ``pg_stat_statements(false)``: the query text file is never read
  by it. The optional query text comes from a separate query, only for top queryids whose
  text is not cached yet.
* Rows are read whole (one per userid, dbid, queryid, toplevel) and summed per
  (database, queryid) here, so a statement run both at top level and inside a function,
  or by several users, is one series.

Counters never go backwards (design):

* Per raw row the job keeps the last values read. A row whose values decreased, whose
  ``stats_since`` changed (1.11+), that is new since the last run, or that was read right
  after a full reset (``pg_stat_statements_info.stats_reset`` changed, 1.9+) contributes
  its whole value as the increase; otherwise it contributes the difference. Every run
  reads every row, so an entry evicted at ``pg_stat_statements.max`` (``dealloc``) that
  comes back is seen as new. (Before 1.11, an entry evicted *and* re-created between two
  runs that has meanwhile grown past its old value cannot be told apart from the old one;
  its increase is then under-counted by the old value.)
* Increases are added to a per-(database, queryid) running total; a top-N series
  exports that total. The ``other`` series of a database accumulates the increases of
  every group outside the current top N, run after run, so it never decreases even
  though the set of queryids it covers changes: a group promoted into the top N starts
  its own series (with its history) and stops feeding ``other``; a demoted group feeds
  ``other`` from then on.
* Rows with a NULL queryid (another user's statements seen without pg_read_all_stats)
  are counted in ``other`` and reported once as a missing privilege.
* Totals of a group that left pg_stat_statements are kept for :data:`FORGET_AFTER`
  seconds, so a top statement that is evicted and comes back continues its series.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from collectors.postgres.connection import Connection, PostgresPool
from collectors.postgres.counters import RunningTotals
from collectors.postgres.job import PostgresJob
from collectors.postgres.notices import Notices, missing_privilege
from monitor.kernel.redact import redact
from monitor.kernel.snapshot import Sample, counter, gauge, info

LABELS = ("datname", "queryid")
CALLS = counter("pg_stat_statements_calls_total", "Times the statement was executed", *LABELS)
EXEC_SECONDS = counter(
    "pg_stat_statements_exec_seconds_total", "Time spent executing the statement", *LABELS
)
ROWS = counter("pg_stat_statements_rows_total", "Rows retrieved or affected", *LABELS)
SHARED_HIT = counter(
    "pg_stat_statements_shared_blks_hit_total", "Shared buffer cache hits", *LABELS
)
SHARED_READ = counter(
    "pg_stat_statements_shared_blks_read_total", "Shared blocks read from disk or OS cache", *LABELS
)
BLK_READ_SECONDS = counter(
    "pg_stat_statements_blk_read_seconds_total",
    "Time spent reading data file blocks, shared and local (needs track_io_timing)",
    *LABELS,
)
BLK_WRITE_SECONDS = counter(
    "pg_stat_statements_blk_write_seconds_total",
    "Time spent writing data file blocks, shared and local (needs track_io_timing)",
    *LABELS,
)
VALUE_SPECS = (
    CALLS,
    EXEC_SECONDS,
    ROWS,
    SHARED_HIT,
    SHARED_READ,
    BLK_READ_SECONDS,
    BLK_WRITE_SECONDS,
)
SCALE = (1.0, 1e-3, 1.0, 1.0, 1.0, 1e-3, 1e-3)
"""Raw pg_stat_statements units (times in ms) to exported base units."""
EXEC = 1
"""Index of the execution time among the values."""

AVAILABLE = gauge(
    "pg_stat_statements_available",
    "1 if pg_stat_statements can be read in the connected database, else 0",
)
ENTRIES = gauge("pg_stat_statements_entries", "Rows in pg_stat_statements")
DEALLOC = counter(
    "pg_stat_statements_dealloc_total",
    "Entries evicted because pg_stat_statements.max was reached (extension 1.9+)",
)
QUERY_INFO = info(
    "pg_stat_statements_query_info",
    "Normalised, truncated text of a top statement",
    *LABELS,
    "query",
)

OTHER = "other"
FORGET_AFTER = 3600.0
"""Seconds a vanished statement's totals are kept in case it comes back."""
RELOOKUP_AFTER = 300.0
"""Seconds between checks of the extension's version (ALTER EXTENSION ... UPDATE)."""

EXTENSION_SQL = """
SELECT n.nspname AS schema, e.extversion AS version
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""
DATABASES_SQL = "SELECT oid, datname FROM pg_database"

_STALE_DEFINITION = (
    psycopg.errors.UndefinedFunction,
    psycopg.errors.UndefinedColumn,
    psycopg.errors.UndefinedTable,
    psycopg.errors.InvalidSchemaName,
)


def parse_version(text: str) -> tuple[int, ...]:
    """``'1.10'`` -> ``(1, 10)`` (numeric, so 1.10 > 1.9)."""
    return tuple(int(part) for part in re.findall(r"\d+", text))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def statements_sql(schema: str, version: Sequence[int], current_database: bool = False) -> str:
    """The main query for extension ``version`` installed in ``schema``.

    Columns: userid, dbid, queryid, toplevel, then the values in :data:`VALUE_SPECS`
    order (raw units), then ``stats_since`` as epoch seconds (NULL before 1.11). With
    ``current_database``, only the rows of the database the connection is in.
    """
    v = tuple(version)
    exec_time = "total_exec_time" if v >= (1, 8) else "total_time"
    toplevel = "toplevel" if v >= (1, 9) else "true"
    if v >= (1, 11):
        blk_read = "shared_blk_read_time + local_blk_read_time"
        blk_write = "shared_blk_write_time + local_blk_write_time"
        since = "extract(epoch FROM stats_since)::float8"
    else:
        blk_read, blk_write, since = "blk_read_time", "blk_write_time", "NULL::float8"
    return (
        f"SELECT userid::int8, dbid::int8, queryid, {toplevel}, calls::float8, "
        f"{exec_time}, rows::float8, shared_blks_hit::float8, shared_blks_read::float8, "
        f"{blk_read}, {blk_write}, {since} "
        f"FROM {quote_ident(schema)}.pg_stat_statements(false)"
        + (CURRENT_DATABASE_FILTER if current_database else "")
    )


CURRENT_DATABASE_FILTER = (
    " WHERE dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())"
)


def info_sql(schema: str, version: Sequence[int]) -> str | None:
    """``dealloc`` and ``stats_reset`` (epoch) from pg_stat_statements_info (1.9+)."""
    if tuple(version) < (1, 9):
        return None
    return (
        "SELECT dealloc::float8 AS dealloc, extract(epoch FROM stats_reset)::float8 AS stats_reset "
        f"FROM {quote_ident(schema)}.pg_stat_statements_info"
    )


def text_sql(schema: str) -> str:
    return (
        "SELECT dbid::int8, queryid, query "
        f"FROM {quote_ident(schema)}.pg_stat_statements(true) WHERE queryid = ANY(%s)"
    )


_WS = re.compile(r"\s+")
_STRING = re.compile(r"'(?:[^']|'')*'")


def normalise_query(text: str, max_length: int) -> str:
    """One line, string literals masked (utility statements keep theirs), truncated."""
    one_line = _WS.sub(" ", _STRING.sub("'?'", text)).strip()
    one_line = redact(one_line)
    if len(one_line) > max_length:
        return one_line[: max_length - 1] + "…"
    return one_line


GroupKey = tuple[int, int | None]
"""(dbid, queryid); queryid None collects the rows whose queryid is hidden."""


class StatementTotals:
    """The counter bookkeeping of :mod:`statements`, without any I/O (see module doc).

    After :meth:`update`, ``top`` lists the top N group keys, ``other`` maps each dbid
    to its ``other`` totals, and ``changed`` holds the groups that grew in that update
    (so unchanged top statements can reuse their samples).
    """

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._totals: dict[GroupKey, list[float]] = {}
        self._gone: dict[GroupKey, tuple[list[float], float]] = {}
        self._rows: dict[GroupKey, int] = {}
        self._new_rows = 0
        """Rows currently read per group (the groups present in pg_stat_statements)."""
        self.other: dict[int, list[float]] = {}
        self.top: list[GroupKey] = []
        self.changed: set[GroupKey] = set()
        self.hidden_rows = 0
        self._top_n = -1

    def totals_of(self, key: GroupKey) -> list[float]:
        return self._totals[key]

    def update(self, rows: Iterable[tuple[Any, ...]], top_n: int, full_reset: bool = False) -> None:
        """Feed one full read of the main query; recompute the top N and ``other``."""
        last = self._last
        new_last: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        increases: dict[GroupKey, list[float]] = {}
        hidden: dict[tuple[Any, ...], list[Any]] = {}
        last_get = last.get
        self._new_rows = 0
        for row in rows:
            rowkey = row[:4]
            if row[2] is None:
                merged = hidden.get(rowkey)
                if merged is None:
                    hidden[rowkey] = list(row)
                else:
                    for i in range(4, 11):
                        merged[i] += row[i]
                continue
            new_last[rowkey] = row
            if full_reset or last_get(rowkey) != row:  # unchanged is the common case
                self._feed(row, last_get(rowkey), increases, full_reset)
        self.hidden_rows = len(hidden)
        for merged in hidden.values():
            row = tuple(merged)
            new_last[row[:4]] = row
            self._feed(row, last_get(row[:4]), increases, full_reset)
        self._last = new_last
        vanished = self._forget(last, new_last)
        self._rank(increases, vanished, top_n)
        chosen = set(self.top)
        for key, inc in increases.items():
            if key in chosen:
                continue
            bucket = self.other[key[0]]
            for i, v in enumerate(inc):
                bucket[i] += v
        self.changed = set(increases)

    def _feed(
        self,
        row: tuple[Any, ...],
        prev: tuple[Any, ...] | None,
        increases: dict[GroupKey, list[float]],
        full_reset: bool,
    ) -> None:
        key: GroupKey = (row[1], row[2])
        values = row[4:11]
        if (
            prev is None
            or full_reset
            or prev[11] != row[11]
            or any(v < p for v, p in zip(values, prev[4:11], strict=True))
        ):
            inc = list(values)
        else:
            inc = [v - p for v, p in zip(values, prev[4:11], strict=True)]
        if prev is None:
            self._rows[key] = self._rows.get(key, 0) + 1
            self._new_rows += 1
        total = self._totals.get(key)
        if total is None:
            revived = self._gone.pop(key, None)
            total = self._totals[key] = revived[0] if revived else [0.0] * 7
            if key[0] not in self.other:
                self.other[key[0]] = [0.0] * 7
        for i, v in enumerate(inc):
            total[i] += v
        pending = increases.get(key)
        if pending is None:
            increases[key] = inc
        else:
            for i, v in enumerate(inc):
                pending[i] += v

    def _rank(
        self,
        increases: dict[GroupKey, list[float]],
        vanished: bool,
        top_n: int,
    ) -> None:
        """Recompute the top N, or keep it when nothing could have changed it.

        Totals only grow, so the previous top N stays the top N unless one of its
        members vanished or a statement outside it grew past its smallest member.
        """
        totals = self._totals
        top = self.top
        if top_n == self._top_n and not vanished and top:
            floor = min(totals[k][EXEC] for k in top) if len(top) >= top_n else -1.0
            chosen = set(top)
            if all(
                key in chosen or key[1] is None or totals[key][EXEC] <= floor for key in increases
            ):
                return
        self._top_n = top_n
        if not top_n:
            self.top = []
            return
        candidates = [(totals[k][EXEC], k) for k in self._rows if k[1] is not None]
        self.top = [k for _, k in heapq.nlargest(top_n, candidates, key=itemgetter(0))]

    def _forget(
        self, last: dict[tuple[Any, ...], tuple[Any, ...]], now_read: dict[tuple[Any, ...], Any]
    ) -> bool:
        """Park the totals of groups that left pg_stat_statements; True if any did."""
        now = self._clock()
        vanished = False
        # every row read before is read again unless fewer old rows came back than before
        still_there = len(now_read) - self._new_rows
        gone_rows = last.keys() - now_read.keys() if still_there < len(last) else set()
        for rowkey in gone_rows:
            key: GroupKey = (rowkey[1], rowkey[2])
            left = self._rows[key] - 1
            if left:
                self._rows[key] = left
                continue
            del self._rows[key]
            self._gone[key] = (self._totals.pop(key), now)
            vanished = True
        for key in [k for k, (_, t) in self._gone.items() if now - t > FORGET_AFTER]:
            del self._gone[key]
        return vanished

    @property
    def tracked(self) -> int:
        """Groups whose totals are held (present and recently vanished)."""
        return len(self._totals) + len(self._gone)


@dataclass(frozen=True, slots=True)
class Extension:
    schema: str
    version: tuple[int, ...]
    text: str


class StatementsJob(PostgresJob):
    collector = "postgres_statements"

    def __init__(
        self,
        pool: PostgresPool,
        target: str,
        interval: float,
        timeout: float,
        notices: Notices,
        *,
        top_n: int = 100,
        include_query_text: bool = False,
        query_text_max_length: int = 120,
        current_database: bool = False,
    ) -> None:
        super().__init__(pool, target, interval, timeout, notices)
        self.top_n = top_n
        self.current_database = current_database
        """Only the connected database's statements (see ``statements.databases``)."""
        self._include_text = include_query_text
        self._text_max = query_text_max_length
        self.totals = StatementTotals()
        self._extension: Extension | None = None
        self._looked_up = 0.0
        self._databases: dict[int, str] = {}
        self._dropped: set[int] = set()
        """dbids of statements whose database no longer exists (not looked up again)."""
        self._stats_reset: float | None = None
        self._dealloc = RunningTotals[str]()
        self._texts: dict[GroupKey, str] = {}
        self._top_samples: dict[GroupKey, tuple[str, str | None, list[Sample]]] = {}

    async def _lookup(self, conn: Connection) -> Extension | None:
        cur = await conn.execute(EXTENSION_SQL)
        row = await cur.fetchone()
        self._looked_up = time.monotonic()
        if row is None:
            self._extension = None
            return None
        self._extension = Extension(row["schema"], parse_version(row["version"]), row["version"])
        return self._extension

    async def collect(self) -> Sequence[Sample]:
        async with self._pool.connection() as conn:
            ext = self._extension
            if ext is None or time.monotonic() - self._looked_up > RELOOKUP_AFTER:
                ext = await self._lookup(conn)
            if ext is None:
                return self._missing("is not installed in the connected database")
            try:
                return await self._read(conn, ext)
            except _STALE_DEFINITION:
                ext = await self._lookup(conn)  # updated or dropped since the last lookup
                if ext is None:
                    return self._missing("is not installed in the connected database")
                return await self._read(conn, ext)
            except psycopg.errors.ObjectNotInPrerequisiteState:
                return self._missing("is installed but not loaded (shared_preload_libraries)")

    def _missing(self, why: str) -> Sequence[Sample]:
        self._notices.warn(
            "pg_stat_statements",
            f"pg_stat_statements {why}: no statement metrics "
            "(CREATE EXTENSION pg_stat_statements in the database the monitor connects to)",
        )
        return (AVAILABLE(0, target=self.target),)

    async def _read(self, conn: Connection, ext: Extension) -> Sequence[Sample]:
        full_reset = False
        dealloc: float | None = None
        query = info_sql(ext.schema, ext.version)
        if query is not None:
            cur = await conn.execute(query)
            info_row = await cur.fetchone()
            if info_row is not None:
                dealloc_raw, stats_reset = info_row["dealloc"], info_row["stats_reset"]
                full_reset = self._stats_reset is not None and stats_reset != self._stats_reset
                self._stats_reset = stats_reset
                dealloc = self._dealloc.update("", (dealloc_raw,), reset=full_reset)[0]
        async with conn.cursor(row_factory=tuple_row) as tcur:
            await tcur.execute(statements_sql(ext.schema, ext.version, self.current_database))
            rows = await tcur.fetchall()
        self._notices.clear("pg_stat_statements")
        self.totals.update(rows, self.top_n, full_reset)
        if self.totals.hidden_rows:
            self._notices.warn(
                "pg_stat_statements_queryid",
                missing_privilege(
                    "other users' statements have no queryid and are counted in queryid=other"
                ),
            )
        else:
            self._notices.clear("pg_stat_statements_queryid")
        unknown = self.totals.other.keys() - self._databases.keys() - self._dropped
        if unknown:
            cur = await conn.execute(DATABASES_SQL)
            self._databases = {r["oid"]: r["datname"] for r in await cur.fetchall()}
            self._dropped = unknown - self._databases.keys()
        if self._include_text:
            await self._fetch_texts(conn, ext)
        return self._samples(len(rows), dealloc)

    async def _fetch_texts(self, conn: Connection, ext: Extension) -> None:
        wanted = set(self.totals.top)
        self._texts = {k: v for k, v in self._texts.items() if k in wanted}
        missing = [k for k in wanted if k not in self._texts]
        if not missing:
            return
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(text_sql(ext.schema), ([q for _, q in missing],))
            for dbid, queryid, query in await cur.fetchall():
                key = (dbid, queryid)
                if key in wanted and key not in self._texts and query is not None:
                    self._texts[key] = normalise_query(query, self._text_max)

    def _samples(self, entries: int, dealloc: float | None) -> list[Sample]:
        target = self.target
        out = [AVAILABLE(1, target=target), ENTRIES(entries, target=target)]
        if dealloc is not None:
            out.append(DEALLOC(dealloc, target=target))
        databases = self._databases
        changed = self.totals.changed
        previous = self._top_samples
        current: dict[GroupKey, tuple[str, str | None, list[Sample]]] = {}
        for key in self.totals.top:
            datname = databases.get(key[0])
            if datname is None:
                continue
            text = self._texts.get(key)
            cached = previous.get(key)
            if cached is not None and key not in changed and cached[:2] == (datname, text):
                samples = cached[2]  # unchanged statement: its immutable samples again
            else:
                samples = self._statement_samples(datname, str(key[1]), self.totals.totals_of(key))
                if text is not None:
                    samples.append(QUERY_INFO(1, datname, str(key[1]), text, target=target))
            current[key] = (datname, text, samples)
            out.extend(samples)
        self._top_samples = current
        for dbid, values in self.totals.other.items():
            datname = databases.get(dbid)
            if datname is not None:
                out.extend(self._statement_samples(datname, OTHER, values))
        return out

    def _statement_samples(self, datname: str, queryid: str, values: list[float]) -> list[Sample]:
        labels = (self.target, datname, queryid)
        return [
            Sample(spec, labels, value * scale)
            for spec, scale, value in zip(VALUE_SPECS, SCALE, values, strict=True)
        ]

"""Dyno manager lines (APP-NAME ``heroku``, PROCID the dyno): runtime metrics, R-errors,
state changes, exits, restarts and boot time.

Runtime metrics (``heroku labs:enable log-runtime-metrics``) come every ~20 s per dyno
as two lines: load averages, and memory in ``MB`` (MiB) with cumulative ``pages``. The
label is ``source`` (``web.1``, stable); ``dyno=heroku.<app-id>.<uuid>`` changes with every
dyno instance and is never a label.

Boot time: from ``Starting process with command`` to ``State changed from starting to
up``; restart time: from the first line of a restart sequence (``Restarting``,
``Cycling`` or ``State changed from up to starting``) to the same ``up``. Both use the
lines' own timestamps, as lines of one event may arrive in separate batches.
"""

from __future__ import annotations

import re

from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.kv import KV, in_base_unit
from collectors.heroku_logs.syslog import parse_timestamp

MEMORY_KINDS = {
    "sample#memory_total": "total",
    "sample#memory_rss": "rss",
    "sample#memory_cache": "cache",
    "sample#memory_swap": "swap",
}
LOAD_WINDOWS = {
    "sample#load_avg_1m": "1m",
    "sample#load_avg_5m": "5m",
    "sample#load_avg_15m": "15m",
}
PAGES = {"sample#memory_pgpgin": "in", "sample#memory_pgpgout": "out"}
STATES = frozenset({"starting", "up", "down", "crashed", "idle", "created"})
ONE_OFF_TYPES = frozenset({"run", "release", "scheduler", "detached"})
_ERROR = re.compile(r"^Error ([RL]\d{1,3}) \(")
_STATE = re.compile(r"^State changed from (\w+) to (\w+)")
_EXIT = re.compile(r"^Process exited with status (\d{1,3})$")
_PROCESS = re.compile(r"^[a-z][a-z0-9_\-]{0,40}(?:\.\d{1,6})?$")
MAX_PENDING = 1000
SEQUENCE_MAX = 600.0
"""Seconds a restart sequence may take; an older unfinished start is forgotten."""


def process_label(procid: str) -> str | None:
    """``web.1`` stays; one-off ``run.4821`` becomes ``run``; odd names are refused."""
    if not _PROCESS.match(procid):
        return None
    kind = procid.partition(".")[0]
    if kind in ONE_OFF_TYPES:
        return kind
    return procid


class DynoParser:
    def __init__(self, state: DrainState) -> None:
        self._state = state
        self._restart_began: dict[tuple[str, str], float] = {}
        self._process_began: dict[tuple[str, str], float] = {}

    def runtime_metrics(self, app: str, procid: str, message: str, now: float) -> bool:
        f = dict(KV.findall(message))
        process = process_label(f.get("source", procid))
        if process is None:
            return False
        values: dict[tuple[str, str], float] = {}
        for key, value in f.items():
            kind = MEMORY_KINDS.get(key)
            if kind is not None:
                converted = in_base_unit(value)
                if converted is not None:
                    values[("memory", kind)] = converted[0]
                continue
            window = LOAD_WINDOWS.get(key)
            if window is not None:
                converted = in_base_unit(value)
                if converted is not None:
                    values[("load", window)] = converted[0]
                continue
            if key == "sample#memory_quota":
                converted = in_base_unit(value)
                if converted is not None:
                    values[("quota", "")] = converted[0]
                continue
            direction = PAGES.get(key)
            if direction is not None and value.endswith("pages") and value[:-5].isdigit():
                # cumulative per dyno instance: exported as a counter (restarts reset it)
                page_key = (app, process, direction)
                if page_key in self._state.dyno_pages or self._state.admit():
                    self._state.dyno_pages[page_key] = float(value[:-5])
        if not values:
            return False
        self._state.set_dyno_gauges(app, process, values, now)
        return True

    def event(self, app: str, procid: str, timestamp: str, message: str, now: float) -> bool:
        """One dyno manager event; False when it is nothing this parser counts."""
        process = process_label(procid)
        if process is None:
            return False
        state = self._state
        if message.startswith("Error "):
            m = _ERROR.match(message)
            if m is None:
                return False
            state.dyno_error(app, process, m[1], now)
            return True
        if message.startswith("State changed"):
            m = _STATE.match(message)
            if m is None:
                return False
            before = m[1] if m[1] in STATES else "other"
            after = m[2] if m[2] in STATES else "other"
            state.bump(state.state_changes, (app, process, before, after))
            if after == "crashed":
                state.crashed(app, process, now)
            elif before == "up" and after == "starting":
                self._began(self._restart_began, app, process, timestamp, earliest=True)
            elif before == "starting" and after == "up":
                self._booted(app, process, timestamp, now)
            return True
        if message.startswith("Process exited"):
            m = _EXIT.match(message)
            if m is None:
                return False
            state.bump(state.exits, (app, process, m[1]))
            return True
        if message == "Restarting" or message == "Cycling":
            state.bump(state.restarts, (app, process, message.lower()))
            self._began(self._restart_began, app, process, timestamp, earliest=True)
            return True
        if message.startswith("Starting process with command"):
            self._began(self._process_began, app, process, timestamp, earliest=False)
            return True
        return False

    def _began(
        self,
        table: dict[tuple[str, str], float],
        app: str,
        process: str,
        timestamp: str,
        *,
        earliest: bool,
    ) -> None:
        """Note the start of a sequence; ``earliest`` keeps an earlier line of the same
        sequence (a restart has several), otherwise the latest start wins."""
        at = parse_timestamp(timestamp)
        if at is None:
            return
        key = (app, process)
        prior = table.get(key)
        if earliest and prior is not None and prior <= at < prior + SEQUENCE_MAX:
            return
        if prior is None and len(table) >= MAX_PENDING:
            table.pop(next(iter(table)))
        table[key] = at

    def _booted(self, app: str, process: str, timestamp: str, now: float) -> None:
        at = parse_timestamp(timestamp)
        if at is None:
            return
        key = (app, process)
        for kind, table in (("boot", self._process_began), ("restart", self._restart_began)):
            began = table.pop(key, None)
            if began is None or at < began:
                continue
            series = (app, process, kind)
            if series in self._state.boot_seconds or self._state.admit():
                self._state.boot_seconds[series] = (at - began, now)

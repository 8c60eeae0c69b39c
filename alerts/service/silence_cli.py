"""``monitor silence add|list|expire``: runtime silences straight in the state database.

No HTTP needed: the command opens the configured state database (SQLite file or
PostgreSQL), so ``heroku run monitor silence add ...`` works while the daemon runs in
another dyno; the daemon re-reads the silences every couple of seconds.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from collections.abc import Sequence

from alerts.runtime_silences import SilenceError, add_silence, describe, parse_request
from alerts.service.config import AlertingConfig as Config
from alerts.silences import ActiveSilence, Silences
from alerts.statedb import StateDbError, open_state_db
from monitor.kernel.redact import redact

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, wanted = value.partition("=")
        if not sep or not name.strip():
            raise SilenceError(f"{option} {value!r}: expected LABEL=VALUE, e.g. alertname=PgDown")
        out[name.strip()] = wanted
    return out


def _operator() -> str:
    for name in ("MONITOR_USER", "USER", "LOGNAME"):
        if os.environ.get(name):
            return f"cli:{os.environ[name]}"
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def add(
    config: Config,
    match: Sequence[str],
    match_re: Sequence[str],
    duration: str | None,
    until: str | None,
    start: str | None,
    comment: str | None,
    created_by: str | None,
) -> int:
    try:
        body: dict[str, object] = {
            "matchers": _pairs(match, "--match"),
            "matchers_re": _pairs(match_re, "--match-re"),
            "comment": comment or "",
        }
        for key, value in (
            ("duration", duration),
            ("ends_at", until),
            ("starts_at", start),
            ("created_by", created_by),
        ):
            if value is not None:
                body[key] = value
        row = parse_request(
            body, time.time(), created_by=_operator(), max_silence=config.max_silence
        )
    except SilenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    db = open_state_db(config.state)
    try:
        await db.open()
        await add_silence(db, row)
    except StateDbError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await db.close()
    print(row.id)
    print(describe(ActiveSilence.of_row(row), time.time()), file=sys.stderr)
    return EXIT_OK


async def list_silences(config: Config, show_ended: bool) -> int:
    silences = Silences(config.silences)
    db = open_state_db(config.state)
    try:
        await db.open()
        silences.set_runtime(await db.load_silences())
    except StateDbError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await db.close()
    now = time.time()
    shown = [
        s for s in silences.all() if show_ended or s.end is None or s.end > now or s.active(now)
    ]
    if not shown:
        print("no silences")
    for silence in shown:
        print(redact(describe(silence, now)))
    return EXIT_OK


async def expire(config: Config, silence_id: str) -> int:
    db = open_state_db(config.state)
    try:
        await db.open()
        found = await db.expire_silence(silence_id, time.time())
    except StateDbError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await db.close()
    if not found:
        hint = (
            " (config silences are changed in the configuration)"
            if silence_id.startswith("config-")
            else ""
        )
        print(f"error: no runtime silence with id {silence_id!r}{hint}", file=sys.stderr)
        return EXIT_FAILED
    print(f"expired {silence_id}")
    return EXIT_OK

"""``monitor deploy mark`` and ``monitor deploy report``.

``mark`` writes a marker straight into the state database (the running daemon reads it
on its next run): exit 0 recorded, 1 the database is unreachable, 2 bad input.
``report`` prints the stored comparison of a release (default: each app's newest
compared release): exit 0, 1 unreachable, 2 no such release.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TextIO

from collectors.deploys.compare import Finding, show
from collectors.deploys.markers import MarkerError, marker, parse_version
from collectors.deploys.store import StoredVerdict, open_deploy_store
from collectors.heroku_logs.release_log import ReleaseLogError

TIMEOUT = 15.0


async def mark(
    state_url: str,
    app: str | None,
    version: str,
    commit: str | None,
    description: str | None,
    out: TextIO = sys.stdout,
) -> int:
    try:
        event = marker(app, version, commit=commit, description=description)
    except MarkerError as exc:
        print(f"monitor deploy mark: {exc}", file=sys.stderr)
        return 2
    store = open_deploy_store(state_url)
    try:
        async with asyncio.timeout(TIMEOUT):
            await store.open()
            await store.record(event)
    except (ReleaseLogError, TimeoutError) as exc:
        print(f"monitor deploy mark: cannot record: {exc or 'timeout'}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(ReleaseLogError):
            await store.close()
    print(f"recorded {event.app} v{event.version}", file=out)
    return 0


def table(verdict: StoredVerdict) -> str:
    """The comparison as a fixed-width table, regressions first."""
    lines = [f"{verdict.app} v{verdict.version}: {verdict.verdict}"]
    header = ("", "signal", "subject", "before", "after", "n before", "n after", "p")
    rows: list[tuple[str, ...]] = [header]
    ordered = sorted(verdict.findings, key=lambda f: (not f.regressed, not f.judged))
    for f in ordered:
        rows.append(_row(f))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if not verdict.findings:
        lines.append("(no signal had data in both windows)")
    return "\n".join(lines)


def _row(f: Finding) -> tuple[str, ...]:
    mark_ = "!!" if f.regressed else ("ok" if f.judged else "..")
    p = "-" if f.p_value is None else f"{f.p_value:.2g}"
    return (
        mark_,
        f.signal,
        f.subject or "-",
        show(f.before, f.signal),
        show(f.after, f.signal),
        str(f.n_before),
        str(f.n_after),
        p,
    )


async def report(
    state_url: str, app: str | None, version: str | None, out: TextIO = sys.stdout
) -> int:
    try:
        wanted = parse_version(version) if version else None
    except MarkerError as exc:
        print(f"monitor deploy report: {exc}", file=sys.stderr)
        return 2
    store = open_deploy_store(state_url)
    try:
        async with asyncio.timeout(TIMEOUT):
            await store.open()
            apps = [app] if app else await store.verdict_apps()
            found: list[StoredVerdict] = []
            for name in apps:
                verdicts = await store.verdicts(name, 200 if wanted else 1)
                found.extend(v for v in verdicts if wanted is None or v.version == wanted)
    except (ReleaseLogError, TimeoutError) as exc:
        print(f"monitor deploy report: cannot read: {exc or 'timeout'}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(ReleaseLogError):
            await store.close()
    if not found:
        what = f"v{wanted}" if wanted else "any release"
        print(f"monitor deploy report: no comparison stored for {what}", file=sys.stderr)
        return 2
    print("\n\n".join(table(v) for v in found), file=out)
    return 0

"""``monitor once`` and ``monitor check``: single passes over every target."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from monitor.kernel.component import Component
from monitor.kernel.exposition import Exposition
from monitor.kernel.redact import describe_error
from monitor.kernel.runner import JobRunner
from monitor.kernel.snapshot import Snapshot
from monitor.kernel.snapshot_store import SnapshotStore
from monitor.kernel.source import CheckResult, Source

CHECK_TIMEOUT = 20.0


async def collect_once(sources: Sequence[Source], store: SnapshotStore) -> list[Snapshot]:
    """Run every job of every source once, concurrently, each under its own timeout."""
    runner = JobRunner(store)
    jobs = [job for source in sources for job in source.jobs()]
    return list(await asyncio.gather(*(runner.run(job) for job in jobs)))


def render(snapshots: Sequence[Snapshot], exposition: Exposition, fmt: str) -> str:
    if fmt == "prometheus":
        return exposition.render().decode()
    rows = [
        {
            "collector": snap.collector,
            "target": snap.target,
            "ok": snap.ok,
            "error": snap.error,
            "duration_seconds": round(snap.duration, 6),
            "samples": [
                {"name": s.name, "labels": s.labels, "value": s.value} for s in snap.samples
            ],
        }
        for snap in snapshots
    ]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    lines = []
    for snap in snapshots:
        state = "ok" if snap.ok else f"FAILED: {snap.error}"
        lines.append(f"# {snap.collector}/{snap.target}: {state} ({snap.duration * 1000:.1f} ms)")
        for s in snap.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in s.labels.items())
            lines.append(f"{s.name}{{{labels}}} {s.value:g}")
    return "\n".join(lines)


async def _guarded(source: Source) -> CheckResult:
    item = f"{source.kind}/{source.name}"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await source.check()
    except TimeoutError:
        return CheckResult(item, False, f"no answer within {CHECK_TIMEOUT:g}s")
    except Exception as exc:
        return CheckResult(item, False, describe_error(exc))


async def _component_checks(component: Component) -> Sequence[CheckResult]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await component.check()
    except Exception as exc:
        return [CheckResult(component.name, False, describe_error(exc))]


async def check_all(
    sources: Sequence[Source], components: Sequence[Component]
) -> list[CheckResult]:
    results = await asyncio.gather(*(_guarded(s) for s in sources))
    out = list(results)
    for group in await asyncio.gather(*(_component_checks(c) for c in components)):
        out.extend(group)
    return out


def format_check(result: CheckResult) -> list[str]:
    lines = [f"{'ok' if result.ok else 'FAIL':<5} {result.item:<32} {result.detail}"]
    lines.extend(f"{'warn':<5} {result.item:<32} {w}" for w in result.warnings)
    return lines

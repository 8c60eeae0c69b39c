"""``monitor demo``: a throwaway PostgreSQL primary and replica, a small workload, and
the daemon watching them with the log receiver, on http://127.0.0.1:9187/metrics.

Ctrl-C (or ``--duration``) stops everything and deletes the data directories.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import structlog

from monitor.config import validate
from monitor.durations import parse_duration

log = structlog.get_logger("monitor.demo")


def demo_config(
    primary_dsn: str, replica_dsn: str | None, listen: str, state_dir: Path
) -> dict[str, Any]:
    postgres = [{"name": "primary", "url": primary_dsn}]
    if replica_dsn:
        postgres.append({"name": "replica", "url": replica_dsn})
    return {
        "interval": "5s",
        "http": {"listen": listen},
        "state": {"url": f"sqlite:///{state_dir / 'monitor-state.db'}"},
        "targets": {"postgres": postgres},
        "receivers": {"stdout": {"type": "log"}},
        "routes": [{"match": {}, "receivers": ["stdout"]}],
    }


def run_demo(*, listen: str, duration: str | None, replica: bool) -> int:
    from monitor.daemon import Daemon
    from monitor.testbed import TestBed, run_workload

    seconds = parse_duration(duration) if duration else None
    log.info("starting a throwaway PostgreSQL", replica=replica)
    with (
        TestBed(replica=replica) as bed,
        tempfile.TemporaryDirectory(prefix="monitor-demo-") as tmp,
    ):
        stop = threading.Event()
        worker = threading.Thread(
            target=run_workload, args=(bed.primary.dsn(),), kwargs={"stop": stop}, daemon=True
        )
        worker.start()
        config = validate(
            demo_config(
                bed.primary.dsn(), bed.replica.dsn() if bed.replica else None, listen, Path(tmp)
            )
        )
        # the throwaway servers have no password: show how to reach them
        print(f"demo: metrics at http://{listen}/metrics", file=sys.stderr)
        print(f"demo: primary  psql '{bed.primary.dsn()}'", file=sys.stderr)
        if bed.replica:
            print(f"demo: replica  psql '{bed.replica.dsn()}'", file=sys.stderr)
        print("demo: Ctrl-C stops everything and deletes the data", file=sys.stderr)

        async def main() -> int:
            daemon = Daemon(config)
            if seconds is not None:
                asyncio.get_running_loop().call_later(seconds, daemon.request_stop)
            return await daemon.run()

        try:
            status = asyncio.run(main())
        finally:
            stop.set()
            worker.join(timeout=5)
    log.info("demo stopped; data directories deleted")
    return status

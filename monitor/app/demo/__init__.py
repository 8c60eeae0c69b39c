"""``monitor demo``: a throwaway PostgreSQL primary and replica, a small workload, and
the daemon watching them with the log receiver, on http://127.0.0.1:9187/metrics.

When ``redis-server`` and ``memcached`` are installed, a throwaway Redis and Memcached
with a little cache traffic are watched too (see :mod:`monitor.demo_caches`).

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

from monitor.app.config import validate
from monitor.app.demo.caches import DemoCaches, demo_caches, run_cache_traffic
from monitor.kernel.durations import parse_duration

log = structlog.get_logger("monitor.demo")


def demo_config(
    primary_dsn: str,
    replica_dsn: str | None,
    listen: str,
    state_dir: Path,
    caches: DemoCaches | None = None,
) -> dict[str, Any]:
    postgres = [{"name": "primary", "url": primary_dsn}]
    if replica_dsn:
        postgres.append({"name": "replica", "url": replica_dsn})
    targets: dict[str, Any] = {"postgres": postgres}
    if caches is not None and caches.redis_url:
        targets["redis"] = [{"name": "cache", "url": caches.redis_url}]
    if caches is not None and caches.memcached:
        targets["memcached"] = [{"name": "sessions", "servers": caches.memcached}]
    return {
        "interval": "5s",
        "http": {"listen": listen},
        "state": {"url": f"sqlite:///{state_dir / 'monitor-state.db'}"},
        "targets": targets,
        "receivers": {"stdout": {"type": "log"}},
        "routes": [{"match": {}, "receivers": ["stdout"]}],
    }


def run_demo(*, listen: str, duration: str | None, replica: bool) -> int:
    from monitor.app.daemon import Daemon
    from monitor.app.demo.testbed import TestBed, run_workload

    seconds = parse_duration(duration) if duration else None
    log.info("starting a throwaway PostgreSQL", replica=replica)
    with (
        TestBed(replica=replica) as bed,
        demo_caches() as caches,
        tempfile.TemporaryDirectory(prefix="monitor-demo-") as tmp,
    ):
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=run_workload, args=(bed.primary.dsn(),), kwargs={"stop": stop}, daemon=True
            ),
            threading.Thread(target=run_cache_traffic, args=(caches, stop), daemon=True),
        ]
        for worker in workers:
            worker.start()
        config = validate(
            demo_config(
                bed.primary.dsn(),
                bed.replica.dsn() if bed.replica else None,
                listen,
                Path(tmp),
                caches,
            )
        )
        # the throwaway servers have no password: show how to reach them
        print(f"demo: metrics at http://{listen}/metrics", file=sys.stderr)
        print(f"demo: primary  psql '{bed.primary.dsn()}'", file=sys.stderr)
        if bed.replica:
            print(f"demo: replica  psql '{bed.replica.dsn()}'", file=sys.stderr)
        if caches.redis_url:
            print(f"demo: redis    redis-cli -u {caches.redis_url}", file=sys.stderr)
        if caches.memcached:
            print(f"demo: memcached {caches.memcached}", file=sys.stderr)
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
            for worker in workers:
                worker.join(timeout=5)
    log.info("demo stopped; data directories deleted")
    return status

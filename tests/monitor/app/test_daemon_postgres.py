"""The daemon end to end against a real PostgreSQL primary and streaming replica."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from conftest import make_config, run_daemon
from support import metric, parse_exposition, require_binary, wait_for

from monitor.app.demo.testbed import TestBed


def pg_config(bed: TestBed, interval: str = "1s") -> dict[str, object]:
    assert bed.replica is not None
    return {
        "interval": interval,
        "targets": {
            "postgres": [
                {"name": "primary", "url": bed.primary.dsn(), "connect_timeout": "1s"},
                {"name": "replica", "url": bed.replica.dsn(), "connect_timeout": "1s"},
            ]
        },
    }


async def test_primary_down_then_back_without_restart(own_bed: TestBed) -> None:
    config = make_config(
        **pg_config(own_bed), http={"listen": "127.0.0.1:0", "public_read_only": True}
    )
    async with run_daemon(config) as running:

        async def up(target: str) -> float | None:
            r = await running.get("/metrics")
            assert r.status_code == 200
            return metric(parse_exposition(r.text), "pg_up", target=target)

        await wait_for(lambda: _is(up("primary"), 1.0), timeout=10)
        await wait_for(lambda: _is(up("replica"), 1.0), timeout=10)
        text = (await running.get("/metrics")).text
        parsed = parse_exposition(text)
        assert metric(parsed, "pg_in_recovery", target="replica") == 1
        assert metric(parsed, "pg_in_recovery", target="primary") == 0

        await asyncio.to_thread(own_bed.primary.stop, "fast")
        loop = asyncio.get_running_loop()
        stopped_at = loop.time()
        # down within two intervals (1 s each) plus the scrape
        await wait_for(lambda: _is(up("primary"), 0.0), timeout=2.5)
        assert loop.time() - stopped_at <= 2.5
        assert await up("replica") == 1.0  # the replica is unaffected
        health = (await running.get("/healthz")).json()
        assert health["collectors"]["down"] >= 1
        assert "error" not in json.dumps(health)  # status only: no error text
        detail = (await running.get("/healthz/detail")).json()  # public_read_only here
        primary = next(c for c in detail["collectors"] if c["target"] == "primary")
        assert primary["up"] is False and primary["last_error"]

        await asyncio.to_thread(own_bed.primary.start)
        await wait_for(lambda: _is(up("primary"), 1.0), timeout=10)


async def _is(value: object, expected: float) -> bool:
    return await value == expected  # type: ignore[misc]


async def test_metrics_pass_promtool(pg_bed: TestBed, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    config = make_config(**pg_config(pg_bed))
    async with run_daemon(config) as running:
        await wait_for(lambda: _ready(running.get("/metrics")), timeout=10)
        text = (await running.get("/metrics")).text
        om = (
            await running.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        ).text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'pg_up{target="replica"} 1.0' in text
    assert om.endswith("# EOF\n")


async def _ready(response: object) -> bool:
    r = await response  # type: ignore[misc]
    return 'pg_up{target="replica"}' in r.text and 'pg_up{target="primary"}' in r.text

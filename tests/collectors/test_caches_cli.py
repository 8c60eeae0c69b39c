"""``monitor check``, ``monitor once`` and the daemon's /metrics with PgBouncer, Redis and
Memcached targets, as a user runs them (real servers, secrets in the config)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import make_config, run_daemon
from servers import (
    MemcachedServer,
    PgBouncerServer,
    RedisServer,
    memcached_server,
    pgbouncer_server,
    redis_server,
)
from support import free_port, metric, parse_exposition, wait_for

from monitor.app.demo.testbed import TestBed

pytestmark = pytest.mark.timeout(180)

REDIS_PW = "redis-Secret-pw1"
MEMCACHED_PW = "mc-Secret-pw2"
PGBOUNCER_PW = "pgb-Secret-pw3"
SECRETS = (REDIS_PW, MEMCACHED_PW, PGBOUNCER_PW)


@pytest.fixture
def servers(pg_bed: TestBed) -> Iterator[tuple[RedisServer, MemcachedServer, PgBouncerServer]]:
    primary = pg_bed.primary
    with (
        redis_server(args=("--requirepass", REDIS_PW)) as redis,
        memcached_server(username="app", password=MEMCACHED_PW) as memcached,
        pgbouncer_server(primary.host, primary.port, users={"stats": PGBOUNCER_PW}) as bouncer,
    ):
        yield redis, memcached, bouncer


def targets(
    redis: RedisServer, memcached: MemcachedServer, bouncer: PgBouncerServer
) -> dict[str, Any]:
    return {
        "pgbouncer": [{"name": "pool", "url": bouncer.admin_url("stats", PGBOUNCER_PW)}],
        "redis": [{"name": "cache", "url": f"redis://:{REDIS_PW}@{redis.host}:{redis.port}/0"}],
        "memcached": [
            {
                "name": "sessions",
                "servers": memcached.address,
                "username": "app",
                "password": MEMCACHED_PW,
            }
        ],
    }


def monitor(tmp_path: Path, doc: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "HEROKU_"))}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "LOG_FORMAT": "json"},
        check=False,
    )


def base_doc(**targets_doc: Any) -> dict[str, Any]:
    return {
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "state": {"url": "sqlite:///:memory:"},
        "targets": targets_doc,
    }


def test_check_reports_each_target(
    servers: tuple[RedisServer, MemcachedServer, PgBouncerServer], tmp_path: Path
) -> None:
    doc = base_doc(**targets(*servers))
    result = monitor(tmp_path, doc, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("ok") and "pgbouncer/pool" in line for line in lines)
    assert any(line.startswith("ok") and "redis/cache" in line for line in lines)
    assert any(line.startswith("ok") and "memcached/sessions" in line for line in lines)
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_check_fails_for_unreachable_and_wrong_password(
    servers: tuple[RedisServer, MemcachedServer, PgBouncerServer], tmp_path: Path
) -> None:
    redis, _, bouncer = servers
    doc = base_doc(
        redis=[{"name": "cache", "url": f"redis://:wrong-{REDIS_PW}@{redis.host}:{redis.port}"}],
        memcached=[{"name": "gone", "servers": f"127.0.0.1:{free_port()}"}],
        pgbouncer=[{"name": "pool", "url": bouncer.admin_url("stats", f"x{PGBOUNCER_PW}")}],
    )
    result = monitor(tmp_path, doc, "check")
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert {line.split()[1] for line in failed} == {
        "redis/cache",
        "memcached/gone",
        "pgbouncer/pool",
    }
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_once_prints_all_three(
    servers: tuple[RedisServer, MemcachedServer, PgBouncerServer], tmp_path: Path
) -> None:
    result = monitor(tmp_path, base_doc(**targets(*servers)), "once", "--format", "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr
    parsed = parse_exposition(result.stdout)
    assert metric(parsed, "pgbouncer_up", target="pool") == 1
    assert metric(parsed, "redis_up", target="cache") == 1
    assert metric(parsed, "memcached_up", target="sessions") == 1
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


async def test_daemon_serves_cache_metrics(
    servers: tuple[RedisServer, MemcachedServer, PgBouncerServer],
) -> None:
    config = make_config(interval="1s", targets=targets(*servers))
    async with run_daemon(config) as running:

        async def scraped() -> dict[Any, float] | None:
            parsed = parse_exposition((await running.get("/metrics")).text)
            wanted = [
                metric(parsed, "pgbouncer_up", target="pool"),
                metric(parsed, "redis_up", target="cache"),
                metric(parsed, "memcached_up", target="sessions"),
                metric(parsed, "redis_keyspace_hits_total", target="cache"),
            ]
            return parsed if all(v is not None for v in wanted) else None

        parsed = await wait_for(scraped, timeout=20)
    assert metric(parsed, "redis_up", target="cache") == 1
    version = [k for k in parsed if k[0] == "pgbouncer_version_info"]
    assert len(version) == 1

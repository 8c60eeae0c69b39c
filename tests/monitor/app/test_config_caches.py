"""Configuration of PgBouncer, Redis and Memcached targets: shapes, defaults, errors."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_config

from monitor.app.config import load_config
from monitor.app.plugins import build_sources
from monitor.kernel.config.loading import ConfigError


def problems(**targets: Any) -> str:
    with pytest.raises(ConfigError) as info:
        make_config(targets=targets)
    return "\n".join(info.value.problems)


def test_defaults_and_server_list() -> None:
    config = make_config(
        targets={
            "pgbouncer": [{"name": "pool", "url": "postgres://u:pw@db.example.com:6432/pgbouncer"}],
            "redis": [{"name": "cache", "url": "rediss://:pw@redis.example.com:6380"}],
            "memcached": [
                {"name": "mc", "servers": "a.example.com:11211, b.example.com [::1]:11212"}
            ],
        }
    )
    pool = config.targets.pgbouncer[0]
    assert pool.connect_timeout == 5.0 and pool.timeout is None
    assert "sslmode=require" in pool.dsn()
    cache = config.targets.redis[0]
    assert cache.uses_tls and cache.tls_verify is None and cache.connect_timeout == 5.0
    assert config.targets.memcached[0].server_list == (
        ("a.example.com", 11211),
        ("b.example.com", 11211),
        ("::1", 11212),
    )
    kinds = sorted(s.kind for s in build_sources(config))
    assert kinds == ["memcached", "pgbouncer", "redis"]


def test_pgbouncer_url_must_be_the_admin_console() -> None:
    text = problems(pgbouncer=[{"name": "p", "url": "postgresql://u:hunter22@h:6432/app"}])
    assert "targets.pgbouncer[0].url" in text and "'pgbouncer'" in text
    assert "hunter22" not in text


def test_redis_url_scheme_and_tls_options() -> None:
    text = problems(redis=[{"name": "r", "url": "http://:hunter22@h:6379"}])
    assert "redis://, rediss:// or unix://" in text and "hunter22" not in text
    text = problems(redis=[{"name": "r", "url": "redis://h:6379", "tls_verify": False}])
    assert "only to a rediss:// URL" in text
    text = problems(redis=[{"name": "r", "url": "redis://h:notaport"}])
    assert "targets.redis[0].url" in text


def test_memcached_servers_and_credentials() -> None:
    assert "expected host:port" in problems(memcached=[{"name": "m", "servers": "h:99999"}])
    assert "empty" in problems(memcached=[{"name": "m", "servers": " , "}])
    assert "twice" in problems(memcached=[{"name": "m", "servers": "h:1,h:1"}])
    text = problems(memcached=[{"name": "m", "servers": "h", "username": "u"}])
    assert "username and password must be set together" in text


def test_heroku_environment_builds_valid_cache_targets() -> None:
    env = {
        "PGBOUNCER_URL": "postgres://u:p@127.0.0.1:6432/pgbouncer",
        "REDIS_URL": "redis://h:6379",
        "REDIS_TLS_URL": "rediss://:pw@h:6380",
        "MEMCACHIER_SERVERS": "mc1.dev.ec2.memcachier.com:11211",
        "MEMCACHIER_USERNAME": "ABC123",
        "MEMCACHIER_PASSWORD": "mc-secret-pw",
    }
    config = load_config(None, environ=env)
    assert config.targets.redis[0].uses_tls
    mc = config.targets.memcached[0]
    assert mc.server_list == (("mc1.dev.ec2.memcachier.com", 11211),)
    assert mc.username == "ABC123"
    assert mc.password is not None and mc.password.get_secret_value() == "mc-secret-pw"
    assert config.targets.pgbouncer[0].name == "pgbouncer"

"""Environment-only configuration, following Heroku's conventions."""

from __future__ import annotations

from monitor.app.config import load_config


def test_empty_environment_is_a_valid_config() -> None:
    config = load_config(None, environ={})
    assert config.targets.postgres == ()
    assert config.receivers == {}


def test_heroku_environment() -> None:
    env = {
        "DATABASE_URL": "postgres://u:p1@ec2-a.compute.amazonaws.com:5432/d1",
        # the primary's colour URL is the same database: not a second target
        "HEROKU_POSTGRESQL_OLIVE_URL": "postgres://u:p1@ec2-a.compute.amazonaws.com:5432/d1",
        "HEROKU_POSTGRESQL_CHARCOAL_URL": "postgres://u2:p2@ec2-b.compute.amazonaws.com:5432/d1",
        "PGBOUNCER_URL": "postgres://u:p@127.0.0.1:6432/pgbouncer",
        "REDIS_URL": "redis://h:6379",
        "REDIS_TLS_URL": "rediss://:pw@h:6380",
        "MEMCACHIER_SERVERS": "mc1.memcachier.com:11211",
        "MEMCACHIER_USERNAME": "user",
        "MEMCACHIER_PASSWORD": "mcpass",
        "CRUX_API_KEY": "AIzaKEY",
        "MONITOR_ORIGINS": "https://example.com, https://www.example.com",
        "MONITOR_PROBE_URLS": "https://example.com/ https://example.com/health",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
        "PAGERDUTY_ROUTING_KEY": "R0UTINGKEY0123456789012345678901",
        "PORT": "31337",
        "METRICS_AUTH_TOKEN": "metrics-token",
        "DYNO": "web.1",
    }
    config = load_config(None, environ=env)
    names = [t.name for t in config.targets.postgres]
    assert names == ["primary", "charcoal"]
    assert config.targets.postgres[0].dsn().endswith("?sslmode=require")
    assert config.targets.pgbouncer[0].name == "pgbouncer"
    assert config.targets.redis[0].url.get_secret_value() == "rediss://:pw@h:6380"
    assert config.targets.memcached[0].username == "user"
    assert config.targets.crux is not None
    assert config.targets.crux.origins == ("https://example.com", "https://www.example.com")
    assert [p.name for p in config.targets.http] == ["example.com", "example.com_health"]
    assert config.http.listen == "0.0.0.0:31337"
    assert config.http.auth_token is not None
    assert set(config.receivers) == {"pagerduty", "slack"}
    assert [r.receivers for r in config.routes] == [("pagerduty", "slack"), ("slack",)]
    # on a dyno the disk is wiped daily: alert state goes to the database
    assert config.state.url == env["DATABASE_URL"]


def test_state_url_stays_local_off_heroku() -> None:
    config = load_config(None, environ={"DATABASE_URL": "postgres://u:p@localhost/d"})
    assert config.state.url.startswith("sqlite://")


def test_explicit_state_url_wins() -> None:
    config = load_config(
        None,
        environ={
            "DYNO": "worker.1",
            "DATABASE_URL": "postgres://u:p@db/d",
            "MONITOR_STATE_URL": "postgresql://s:s@state/s",
        },
    )
    assert config.state.url == "postgresql://s:s@state/s"


def test_bad_environment_value_is_reported_with_key_path() -> None:
    import pytest

    from monitor.kernel.config.loading import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config(None, environ={"DATABASE_URL": "mysql://u:pw@db/d", "MONITOR_INTERVAL": "x"})
    assert any(p.startswith("targets.postgres[0].url:") for p in info.value.problems)
    assert any(p.startswith("interval:") for p in info.value.problems)
    assert "pw@" not in "\n".join(info.value.problems)

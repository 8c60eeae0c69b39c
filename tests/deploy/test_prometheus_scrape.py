"""The web shape against a real Prometheus: the daemon is configured from the environment
as on a Heroku web dyno ($PORT, METRICS_AUTH_TOKEN, DATABASE_URL plus a
HEROKU_POSTGRESQL_<COLOR>_URL), and Prometheus scrapes it with the bearer token."""

from __future__ import annotations

from typing import Any

from support import wait_for_sync

from monitor.app.demo.testbed import TestBed

TOKEN = "scrape-T0ken-0123456789"


def heroku_web_env(bed: TestBed, tmp_state: str) -> dict[str, str]:
    assert bed.replica is not None
    return {
        "DYNO": "web.1",
        "DATABASE_URL": bed.primary.dsn(),
        "HEROKU_POSTGRESQL_REPLICA_URL": bed.replica.dsn(),
        "METRICS_AUTH_TOKEN": TOKEN,
        "MONITOR_INTERVAL": "1s",
        # keep the alert state out of the shared test bed's database
        "MONITOR_STATE_URL": f"sqlite:///{tmp_state}",
    }


def test_prometheus_scrapes_pg_up_with_the_bearer_token(
    pg_bed: TestBed, tmp_path: Any, start_prometheus: Any, start_monitor: Any
) -> None:
    env = heroku_web_env(pg_bed, str(tmp_path / "state.db"))
    daemon = start_monitor(env=env, token=TOKEN)
    target = f"127.0.0.1:{daemon.port}"
    prom = start_prometheus(
        [
            {
                "job_name": "app-monitor",
                "authorization": {"credentials": TOKEN},
                "static_configs": [{"targets": [target]}],
            },
            {  # Grafana Cloud's Metrics Endpoint may send the token as a basic password
                "job_name": "basic",
                "basic_auth": {"username": "grafana", "password": TOKEN},
                "static_configs": [{"targets": [target]}],
            },
            {
                "job_name": "wrong-token",
                "authorization": {"credentials": "not-the-token"},
                "static_configs": [{"targets": [target]}],
            },
        ]
    )

    def pg_up(job: str) -> dict[str, str]:
        return {r["metric"]["target"]: r["value"][1] for r in prom.query(f'pg_up{{job="{job}"}}')}

    assert wait_for_sync(lambda: pg_up("app-monitor") == {"primary": "1", "replica": "1"}, 60)
    assert wait_for_sync(lambda: pg_up("basic") == {"primary": "1", "replica": "1"}, 30)
    # the replica is a standby, as the daemon reports it through Prometheus
    recovery = prom.query('pg_in_recovery{job="app-monitor"}')
    assert {r["metric"]["target"]: r["value"][1] for r in recovery} == {
        "primary": "0",
        "replica": "1",
    }
    # without the token Prometheus gets a 401: the target is down and nothing is ingested
    assert wait_for_sync(lambda: prom.query('up{job="wrong-token"}'), 30)[0]["value"][1] == "0"
    assert prom.query('pg_up{job="wrong-token"}') == []
    daemon.alive()
    assert daemon.stop() == 0  # SIGTERM, as Heroku stops a dyno
    assert TOKEN not in daemon.output()

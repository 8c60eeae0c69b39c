"""The worker shape against a real Prometheus started with
``--web.enable-remote-write-receiver``. The daemon pushes with remote_write and Prometheus
returns the same series it gets by scraping. The push survives Prometheus being down
(queued, then delivered in order), drops the oldest past its bound and counts them.
Staleness markers end a vanished series at once.

``test_push_survives_a_prometheus_outage`` keeps Prometheus down for a real minute, as
the issue words it. ``MONITOR_TEST_OUTAGE_SECONDS`` shortens the outage for local
iterations. The default, 60, is what CI runs.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from conftest import make_config, run_daemon
from prometheus_client.core import GaugeMetricFamily, Metric
from support import free_port, wait_for, wait_for_sync

from monitor.app.demo.testbed import TestBed

OUTAGE_SECONDS = float(os.environ.get("MONITOR_TEST_OUTAGE_SECONDS", "60"))
SCRAPE_ONLY = ("up", "scrape_duration_seconds", "scrape_samples_scraped")
SCRAPE_ONLY_RE = "up|scrape_.*"


def postgres_targets(bed: TestBed) -> dict[str, Any]:
    assert bed.replica is not None
    return {
        "postgres": [
            {"name": "primary", "url": bed.primary.dsn()},
            {"name": "replica", "url": bed.replica.dsn()},
        ]
    }


def worker_env(bed: TestBed, write_url: str, state: str) -> dict[str, str]:
    """A Heroku worker dyno's configuration: the environment only."""
    assert bed.replica is not None
    return {
        "DYNO": "worker.1",
        "DATABASE_URL": bed.primary.dsn(),
        "HEROKU_POSTGRESQL_REPLICA_URL": bed.replica.dsn(),
        "REMOTE_WRITE_URL": write_url,
        "MONITOR_INTERVAL": "1s",
        "MONITOR_STATE_URL": f"sqlite:///{state}",
    }


def test_pushed_series_are_the_scraped_series(
    pg_bed: TestBed, tmp_path: Any, start_prometheus: Any, start_monitor: Any
) -> None:
    prom_port = free_port()
    write_url = f"http://127.0.0.1:{prom_port}/api/v1/write"
    # the daemon starts first: its first pushes are retried until Prometheus is up
    daemon = start_monitor(env=worker_env(pg_bed, write_url, str(tmp_path / "state.db")))
    # the same Prometheus also scrapes the daemon (job "scrape"), for comparison
    scrape = {"job_name": "scrape", "static_configs": [{"targets": [f"127.0.0.1:{daemon.port}"]}]}
    prom = start_prometheus([scrape], receiver=True, port=prom_port)

    def pg_up(job: str) -> dict[str, str]:
        return {r["metric"]["target"]: r["value"][1] for r in prom.query(f'pg_up{{job="{job}"}}')}

    assert wait_for_sync(lambda: pg_up("app-monitor") == {"primary": "1", "replica": "1"}, 60)
    pushed = prom.query('pg_up{job="app-monitor"}')
    assert {r["metric"]["instance"] for r in pushed} == {"worker.1"}  # $DYNO

    def same() -> tuple[set[Any], set[Any]] | None:
        scraped = prom.label_sets(
            f'{{job="scrape", __name__!~"{SCRAPE_ONLY_RE}"}}', drop=("job", "instance")
        )
        got = prom.label_sets('{job="app-monitor"}', drop=("job", "instance"))
        return None if scraped == got and scraped else (scraped - got, got - scraped)

    def settled() -> bool:
        return same() is None

    try:
        wait_for_sync(settled, timeout=60, interval=0.5)
    except AssertionError:
        raise AssertionError(f"scraped-only, pushed-only series: {same()}") from None
    names = {dict(s)["__name__"] for s in prom.label_sets('{job="app-monitor"}')}
    assert {"pg_up", "monitor_collector_up", "monitor_remote_write_samples_total"} <= names
    assert daemon.stop() == 0


def test_push_survives_a_prometheus_outage(
    pg_bed: TestBed, tmp_path: Any, start_prometheus: Any, start_monitor: Any
) -> None:
    """Prometheus down for OUTAGE_SECONDS (60): a daemon with room queues everything and
    delivers it; one with a small queue keeps only the newest and counts what it drops."""
    prom = start_prometheus(receiver=True)
    common = {"interval": "1s", "state": {"url": "sqlite:///:memory:"}}
    # a few statements only: the shared bed's pg_stat_statements grows with the suite
    primary = {"name": "primary", "url": pg_bed.primary.dsn(), "statements": {"top_n": 5}}
    targets = {"postgres": [primary]}

    def push(job: str, **extra: Any) -> dict[str, Any]:
        # retries at most 2 s apart: delivery starts right after Prometheus is back
        return {
            "url": prom.write_url,
            "interval": "1s",
            "max_backoff": "2s",
            "labels": {"job": job},
            **extra,
        }

    big = start_monitor(
        config={**common, "targets": targets, "remote_write": push("big")}, name="big"
    )
    wait_for_sync(lambda: prom.query('pg_up{job="big"}'), timeout=60)
    # the number of series once it stops growing (self-metrics such as the loop-lag
    # histogram appear a few collections in): the same over three collections
    seen: list[float | None] = []

    def settled_series() -> float | None:
        seen.append(big.value("monitor_remote_write_series"))
        last = seen[-3:]
        return last[0] if len(last) == 3 and last[0] and len(set(last)) == 1 else None

    series = wait_for_sync(settled_series, timeout=60, interval=1.5)
    # the small queue holds about 20 collections: the rest of the minute is dropped
    small_bound = int(series * 20)
    small = start_monitor(
        config={
            **common,
            "targets": targets,
            "remote_write": push(
                "small", max_queue_samples=small_bound, max_samples_per_send=int(series)
            ),
        },
        name="small",
    )
    wait_for_sync(lambda: prom.query('pg_up{job="small"}'), timeout=60)
    # the small daemon settles on the same number of series
    wait_for_sync(
        lambda: abs((small.value("monitor_remote_write_series") or 0) - series) <= series * 0.1,
        timeout=30,
    )

    prom.stop()
    down_at = time.time()
    # the outage itself: a minute of wall time, watching the daemons stay up meanwhile
    wait_for_sync(
        lambda: big.alive() and small.alive() and time.time() - down_at >= OUTAGE_SECONDS,
        timeout=OUTAGE_SECONDS + 30,
        interval=1.0,
    )
    queued_big = big.value("monitor_remote_write_queue_samples") or 0
    assert queued_big >= series * (OUTAGE_SECONDS - 5)  # everything since the outage began
    assert big.value("monitor_remote_write_dropped_samples_total") == 0
    assert small.value("monitor_remote_write_queue_samples") == small_bound
    dropped = small.value("monitor_remote_write_dropped_samples_total") or 0
    assert dropped >= series * (OUTAGE_SECONDS - 5) - small_bound

    prom.start()
    up_at = time.time()
    for daemon in (big, small):
        wait_for_sync(
            lambda d=daemon: (d.value("monitor_remote_write_queue_samples") or 0) < 2 * series,
            timeout=60,
        )
    window = up_at - down_at

    def outage_points(job: str) -> list[float]:
        [result] = prom.query(f'pg_up{{job="{job}", target="primary"}}[{window:.0f}s]', at=up_at)
        return [float(ts) for ts, _ in result["values"] if down_at <= float(ts) <= up_at]

    big_points = outage_points("big")
    assert len(big_points) >= OUTAGE_SECONDS - 3  # one per second of the outage, delivered
    assert big_points[0] <= down_at + 3
    small_points = outage_points("small")
    kept_seconds = small_bound / series
    assert small_points, "the newest samples of the outage were not delivered"
    assert small_points[0] >= up_at - kept_seconds - 3  # the oldest were dropped
    assert len(small_points) <= kept_seconds + 2

    # the drop count reached Prometheus too, through the push itself. The queue delivers
    # the outage's last samples first, whose counter predates the last drops: poll until
    # a collection made after recovery carries the whole count.
    def pushed_dropped() -> float:
        result = prom.query('monitor_remote_write_dropped_samples_total{job="small"}')
        return float(result[0]["value"][1]) if result else 0.0

    wait_for_sync(lambda: pushed_dropped() >= dropped, timeout=30)
    assert big.stop() == 0 and small.stop() == 0


class Toggle:
    """A collector whose one series can be switched off."""

    def __init__(self) -> None:
        self.on = True

    def collect(self) -> list[Metric]:
        family = GaugeMetricFamily("x_toggle", "a series that goes away", labels=["target"])
        if self.on:
            family.add_metric(["t"], 1.0)
        return [family]


async def test_vanished_series_end_at_once_in_prometheus(start_prometheus: Any) -> None:
    prom = await asyncio.to_thread(start_prometheus, receiver=True)
    config = make_config(interval="1s", remote_write={"url": prom.write_url, "interval": "500ms"})
    async with run_daemon(config) as running:
        toggle = Toggle()
        running.daemon.exposition.register(toggle)
        await wait_for(lambda: prom.aquery("x_toggle"), timeout=30)
        toggle.on = False
        # without the staleness marker Prometheus would return it for five more minutes
        await wait_for(lambda: _empty(prom.aquery("x_toggle")), timeout=20)
        assert await prom.aquery("monitor_build_info")  # the rest is still there


async def _empty(result: Any) -> bool:
    return not await result

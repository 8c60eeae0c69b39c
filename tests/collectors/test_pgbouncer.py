"""The PgBouncer collector against a real PgBouncer in front of the test bed's primary."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from conftest import make_config
from servers import PgBouncerServer, pgbouncer_server
from support import free_port, wait_for

from collectors.pgbouncer import PgBouncerSource
from collectors.pgbouncer.admin import find_version
from collectors.pgbouncer.pools import client_samples, pool_samples
from collectors.pgbouncer.stats import StatsTracker
from monitor.app.demo.testbed import TestBed
from monitor.kernel.config.loading import ConfigError
from monitor.kernel.runner import JobRunner
from monitor.kernel.snapshot import Sample, find, value_of
from monitor.kernel.snapshot_store import SnapshotStore

pytestmark = pytest.mark.timeout(180)

POOL = {"database": "postgres", "user": "postgres"}


@pytest.fixture
def bouncer(pg_bed: TestBed) -> Iterator[PgBouncerServer]:
    primary = pg_bed.primary
    with pgbouncer_server(
        primary.host, primary.port, pool_size=2, users={"watcher": "watch-pw-1"}
    ) as srv:
        yield srv


def source_for(url: str, **fields: Any) -> PgBouncerSource:
    config = make_config(targets={"pgbouncer": [{"name": "pool", "url": url, **fields}]})
    return PgBouncerSource(config.targets.pgbouncer[0], config.interval)


@contextlib.asynccontextmanager
async def opened(src: PgBouncerSource) -> AsyncIterator[PgBouncerSource]:
    try:
        yield src
    finally:
        await src.close()


async def collect(src: PgBouncerSource) -> Sequence[Sample]:
    return await src.jobs()[0].collect()


class TransactionHolders:
    """``count`` clients, each opening a transaction through PgBouncer and holding it."""

    def __init__(self, url: str, count: int) -> None:
        self._url = url
        self.release = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._hold, daemon=True) for _ in range(count)]

    def _hold(self) -> None:
        try:
            with psycopg.connect(self._url, prepare_threshold=None, connect_timeout=10) as conn:
                conn.execute("SELECT 1")  # opens the transaction: takes (or waits for) a server
                self.release.wait(30)
                conn.commit()
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> TransactionHolders:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        for thread in self.threads:
            thread.join(timeout=30)


async def test_saturated_pool_shows_waiting_clients_and_sub_second_wait(
    bouncer: PgBouncerServer,
) -> None:
    async with opened(source_for(bouncer.admin_url())) as src:
        with TransactionHolders(bouncer.database_url(), 5) as holders:

            def pool(samples: Sequence[Sample]) -> tuple[float | None, ...]:
                return (
                    value_of(samples, "pgbouncer_pool_clients", **POOL, state="waiting"),
                    value_of(samples, "pgbouncer_pool_clients", **POOL, state="active"),
                    value_of(samples, "pgbouncer_pool_servers", **POOL, state="active"),
                )

            async def saturated() -> Sequence[Sample] | None:
                # the steady state: two transactions on both servers, three clients queued.
                # On the way PgBouncer shows others: a client logged in but idle counts as
                # active without a server, and a server may still be logging in.
                samples = await collect(src)
                return samples if pool(samples) == (3, 2, 2) else None

            samples = await wait_for(saturated, timeout=20)
            assert value_of(samples, "pgbouncer_pool_utilization_ratio", **POOL) == 1.0
            max_wait = value_of(samples, "pgbouncer_pool_max_wait_seconds", **POOL)
            assert max_wait is not None and 0 < max_wait < 1
            check = await src.check()
            assert check.ok and "3 clients waiting" in check.detail
        assert holders.errors == []
        assert value_of(samples, "pgbouncer_database_pool_size", database="postgres") == 2
        assert value_of(samples, "pgbouncer_client_connections_max") == 50
        clients = value_of(samples, "pgbouncer_client_connections")
        assert clients is not None and clients >= 6  # five holders and the monitor
        assert value_of(samples, "pgbouncer_client_utilization_ratio") == clients / 50


async def test_many_identical_collections_work_on_the_admin_console(
    bouncer: PgBouncerServer,
) -> None:
    async with opened(source_for(bouncer.admin_url())) as src:
        for _ in range(8):  # psycopg would auto-prepare the 6th identical SHOW
            samples = await collect(src)
            assert value_of(samples, "pgbouncer_up") == 1
        assert src.console.connects == 1  # no failure hidden by a reconnect
    versions = [s.labels["version"] for s in find(samples, "pgbouncer_version_info")]
    assert len(versions) == 1 and versions[0][0].isdigit()


def run_queries(bouncer: PgBouncerServer, transactions: int) -> None:
    with psycopg.connect(bouncer.database_url(), autocommit=True, prepare_threshold=None) as conn:
        for _ in range(transactions):
            conn.execute("SELECT 1")


async def test_transaction_and_query_counters_and_rates(bouncer: PgBouncerServer) -> None:
    async with opened(source_for(bouncer.admin_url())) as src:
        run_queries(bouncer, 1)
        first = await collect(src)
        before = value_of(first, "pgbouncer_queries_total", database="postgres")
        assert before is not None
        assert value_of(first, "pgbouncer_queries_per_second", database="postgres") is None
        run_queries(bouncer, 40)

        async def counted() -> Sequence[Sample] | None:
            samples = await collect(src)
            total = value_of(samples, "pgbouncer_queries_total", database="postgres")
            return samples if total == before + 40 else None

        samples = await wait_for(counted, timeout=10)
    rate = value_of(samples, "pgbouncer_queries_per_second", database="postgres")
    assert rate is not None and rate > 0
    xact_rate = value_of(samples, "pgbouncer_transactions_per_second", database="postgres")
    assert xact_rate is not None and xact_rate > 0
    seconds = value_of(samples, "pgbouncer_query_seconds_total", database="postgres")
    assert seconds is not None and 0 < seconds < 40  # microseconds scaled to seconds


async def test_restart_keeps_counters_monotonic_and_reconnects(bouncer: PgBouncerServer) -> None:
    runner = JobRunner(SnapshotStore())
    async with opened(source_for(bouncer.admin_url(), timeout="5s")) as src:
        job = src.jobs()[0]
        run_queries(bouncer, 30)
        before = await runner.run(job)
        total = value_of(before.samples, "pgbouncer_queries_total", database="postgres")
        assert total is not None and total >= 30

        bouncer.stop()
        down = await runner.run(job)
        assert not down.ok
        assert [(s.name, s.value) for s in down.samples] == [("pgbouncer_up", 0.0)]

        bouncer.start()
        run_queries(bouncer, 2)
        after = await runner.run(job)
        assert after.ok, after.error
        again = value_of(after.samples, "pgbouncer_queries_total", database="postgres")
        assert again is not None and again >= total + 2


async def test_restart_between_runs_needs_no_failed_run(bouncer: PgBouncerServer) -> None:
    async with opened(source_for(bouncer.admin_url())) as src:
        await collect(src)
        bouncer.restart()
        assert value_of(await collect(src), "pgbouncer_up") == 1
        assert src.console.connects == 2


async def test_stats_user_with_password(bouncer: PgBouncerServer) -> None:
    good = bouncer.admin_url("watcher", "watch-pw-1")
    async with opened(source_for(good)) as src:
        assert value_of(await collect(src), "pgbouncer_up") == 1
    bad = bouncer.admin_url("watcher", "wrong-pw-99")
    async with opened(source_for(bad)) as src:
        snapshot = await JobRunner(SnapshotStore()).run(src.jobs()[0])
        check = await src.check()
    assert value_of(snapshot.samples, "pgbouncer_up") == 0
    assert not check.ok
    for text in (snapshot.error or "", check.detail):
        assert "wrong-pw-99" not in text
        assert "password" in text.lower() or "auth" in text.lower()


async def test_nothing_listening_is_down_not_a_crash() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/pgbouncer?sslmode=disable"
    async with opened(source_for(url, timeout="3s")) as src:
        snapshot = await JobRunner(SnapshotStore()).run(src.jobs()[0])
        check = await src.check()
    assert value_of(snapshot.samples, "pgbouncer_up") == 0
    assert not check.ok and "refused" in check.detail.lower()


def test_url_must_name_the_admin_database() -> None:
    with pytest.raises(ConfigError, match="admin console database 'pgbouncer'"):
        make_config(
            targets={"pgbouncer": [{"name": "p", "url": "postgresql://u:pw@localhost/app"}]}
        )


# -- column mapping across versions ---------------------------------------------------------


def test_pool_columns_by_name_across_versions() -> None:
    v1_24 = {
        "database": "app", "user": "app", "cl_active": 4, "cl_waiting": 1,
        "cl_active_cancel_req": 0, "cl_waiting_cancel_req": 0, "sv_active": 3,
        "sv_active_cancel": 0, "sv_being_canceled": 0, "sv_idle": 1, "sv_used": 0,
        "sv_tested": 0, "sv_login": 0, "maxwait": 0, "maxwait_us": 250000,
        "pool_mode": "transaction", "load_balance_hosts": None, "some_future_column": "x",
    }  # fmt: skip
    old = {"database": "app", "user": "app", "cl_active": 1, "cl_waiting": 2, "maxwait": 3}
    databases = [{"name": "app", "pool_size": 4, "brand_new": 1}]
    new_samples = list(pool_samples("t", [v1_24], databases))
    assert value_of(new_samples, "pgbouncer_pool_max_wait_seconds") == 0.25
    assert value_of(new_samples, "pgbouncer_pool_utilization_ratio") == 0.75
    assert value_of(new_samples, "pgbouncer_pool_clients", state="waiting") == 1
    old_samples = list(pool_samples("t", [old], []))
    assert value_of(old_samples, "pgbouncer_pool_max_wait_seconds") == 3
    assert value_of(old_samples, "pgbouncer_pool_servers", state="idle") == 0
    assert value_of(old_samples, "pgbouncer_pool_utilization_ratio") is None  # no pool_size


def test_client_utilization_needs_both_values() -> None:
    lists = [{"list": "used_clients", "items": 10}]
    config = [{"key": "max_client_conn", "value": "200", "default": "100", "changeable": "yes"}]
    samples = list(client_samples("t", lists, config))
    assert value_of(samples, "pgbouncer_client_utilization_ratio") == 0.05
    assert value_of(list(client_samples("t", lists, [])), "pgbouncer_client_connections") == 10
    assert not [s for s in client_samples("t", lists, []) if "ratio" in s.name]


def test_stats_counters_survive_a_reset_and_scale_microseconds() -> None:
    now = [100.0]
    tracker = StatsTracker(clock=lambda: now[0])
    row = {"database": "app", "total_query_count": 100, "total_query_time": 2_000_000}
    first = list(tracker.samples("t", [row]))
    assert value_of(first, "pgbouncer_query_seconds_total") == 2.0
    assert value_of(first, "pgbouncer_queries_per_second") is None
    now[0] = 110.0
    reset = {"database": "app", "total_query_count": 20, "total_query_time": 100_000}
    second = list(tracker.samples("t", [reset]))
    assert value_of(second, "pgbouncer_queries_total") == 120
    assert value_of(second, "pgbouncer_query_seconds_total") == pytest.approx(2.1)
    assert value_of(second, "pgbouncer_queries_per_second") == 2.0
    assert value_of(second, "pgbouncer_average_query_seconds") == pytest.approx(0.005)


def test_version_from_row_or_notice() -> None:
    assert find_version([{"version": "PgBouncer 1.24.1"}], []) == "1.24.1"
    assert find_version([], ["PgBouncer 1.9.0"]) == "1.9.0"  # before 1.12: a NOTICE
    assert find_version([], []) is None

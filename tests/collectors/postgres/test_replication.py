"""Replication lag on the real primary + streaming replica: paused, stopped, idle."""

from __future__ import annotations

import asyncio

import pytest
from support import wait_for

from collectors.postgres import PostgresSource
from collectors.postgres.replication import lag_seconds, last_replay_age, standby_names
from monitor.app.demo.testbed import PgServer, TestBed
from monitor.kernel.snapshot import Sample
from tests.collectors.postgres.pgtools import job_of, make_source, sql, value

MB = 1024 * 1024


async def collect(source: PostgresSource) -> list[Sample]:
    return list(await job_of(source, "postgres_replication").collect())


def replica_of(bed: TestBed) -> PgServer:
    assert bed.replica is not None
    return bed.replica


def replayed_a_transaction(replica: PgServer) -> bool:
    """The raw replay timestamp is known. The exported age cannot tell: caught up before
    new WAL arrives, the idle-primary guard exports 0 while the timestamp is still NULL
    (nothing replayed since the standby started)."""
    [(known,)] = sql(replica, "SELECT pg_last_xact_replay_timestamp() IS NOT NULL")
    return bool(known)


def write_wal(server: PgServer, megabytes: int) -> None:
    sql(server, "CREATE TABLE IF NOT EXISTS filler (payload text)")
    sql(
        server,
        "INSERT INTO filler SELECT repeat(md5(g::text), 32) FROM generate_series(1, %s) g",
        params=(megabytes * 1024,),
    )


def test_null_lag_is_zero_only_when_nothing_is_behind() -> None:
    assert lag_seconds(None, 0.0) == 0.0
    assert lag_seconds(None, 4096.0) is None
    assert lag_seconds(None, None) is None
    assert lag_seconds(1.5, 0.0) == 1.5


def test_idle_primary_guard() -> None:
    assert last_replay_age(True, 0.0, 120.0) == 0.0  # caught up, receiver streaming
    assert last_replay_age(False, 0.0, 120.0) == 120.0  # disconnected: the raw age
    assert last_replay_age(True, 8192.0, 3.0) == 3.0  # replay behind


def test_standby_names_are_unique() -> None:
    rows = [
        {"application_name": "walreceiver", "client_addr": "10.0.0.1", "pid": 1},
        {"application_name": "walreceiver", "client_addr": "10.0.0.2", "pid": 2},
        {"application_name": "walreceiver", "client_addr": "10.0.0.2", "pid": 3},
        {"application_name": "replica", "client_addr": None, "pid": 4},
    ]
    assert standby_names(rows) == [
        "walreceiver@10.0.0.1",
        "walreceiver@10.0.0.2#2",
        "walreceiver@10.0.0.2#3",
        "replica",
    ]


async def test_paused_replay_shows_lag_in_bytes(
    own_bed: TestBed, sources: list[PostgresSource]
) -> None:
    replica = replica_of(own_bed)
    primary_src = make_source(own_bed.primary.dsn(), name="primary")
    replica_src = make_source(replica.dsn(), name="replica")
    sources += [primary_src, replica_src]
    write_wal(own_bed.primary, 1)  # a replayed transaction, so the replay time is known

    async def age_known() -> bool:
        samples = await collect(replica_src)
        age = value(samples, "pg_standby_last_replay_age_seconds")
        return replayed_a_transaction(replica) and age is not None

    await wait_for(age_known, timeout=20)
    sql(replica, "SELECT pg_wal_replay_pause()")
    write_wal(own_bed.primary, 16)

    async def received() -> bool:
        got = value(await collect(replica_src), "pg_standby_replay_lag_bytes")
        return got is not None and got >= 8 * MB

    await wait_for(received, timeout=20)
    primary = await collect(primary_src)
    assert value(primary, "pg_replication_standbys") == 1
    lag = value(primary, "pg_replication_lag_bytes", standby="replica")
    assert lag is not None and lag >= 8 * MB
    standby = await collect(replica_src)
    assert value(standby, "pg_standby_receiver_up") == 1
    age = value(standby, "pg_standby_last_replay_age_seconds")
    assert age is not None and age > 0  # behind: the guard does not zero it

    sql(replica, "SELECT pg_wal_replay_resume()")

    async def caught_up() -> bool:
        samples = await collect(primary_src)
        return value(samples, "pg_replication_lag_bytes", standby="replica") == 0

    await wait_for(caught_up, timeout=30)

    async def standby_caught_up() -> bool:
        # background WAL (checkpoints, autovacuum) can be received a moment before replay
        return value(await collect(replica_src), "pg_standby_replay_lag_bytes") == 0

    await wait_for(standby_caught_up, timeout=30)


async def test_a_stopped_replica_is_reported_missing(
    own_bed: TestBed, sources: list[PostgresSource]
) -> None:
    primary_src = make_source(own_bed.primary.dsn(), name="primary")
    sources.append(primary_src)
    samples = await collect(primary_src)
    assert value(samples, "pg_replication_standbys") == 1
    await asyncio.to_thread(replica_of(own_bed).stop, "fast")

    async def gone() -> bool:
        return value(await collect(primary_src), "pg_replication_standbys") == 0

    await wait_for(gone, timeout=20)
    samples = await collect(primary_src)
    assert value(samples, "pg_replication_lag_bytes", standby="replica") is None
    assert not [s for s in samples if s.name == "pg_replication_lag_seconds"]


async def test_a_disconnected_replica_does_not_look_healthy(
    own_bed: TestBed, sources: list[PostgresSource]
) -> None:
    replica = replica_of(own_bed)
    replica_src = make_source(replica.dsn(), name="replica")
    sources.append(replica_src)
    write_wal(own_bed.primary, 1)  # a replayed transaction, so the replay time is known

    async def streaming_and_caught_up() -> bool:
        samples = await collect(replica_src)
        return (
            replayed_a_transaction(replica)
            and value(samples, "pg_standby_receiver_up") == 1
            and value(samples, "pg_standby_last_replay_age_seconds") == 0
        )

    await wait_for(streaming_and_caught_up, timeout=20)
    await asyncio.to_thread(own_bed.primary.stop, "fast")

    async def receiver_down() -> bool:
        return value(await collect(replica_src), "pg_standby_receiver_up") == 0

    await wait_for(receiver_down, timeout=20)
    first = value(await collect(replica_src), "pg_standby_last_replay_age_seconds")
    assert first is not None and first > 0  # not the "caught up" 0 of a live link

    async def growing() -> bool:
        later = value(await collect(replica_src), "pg_standby_last_replay_age_seconds")
        return later is not None and later > first + 0.5

    await wait_for(growing, timeout=10)


async def test_an_idle_primary_produces_no_replica_lag(
    pg_bed: TestBed, sources: list[PostgresSource]
) -> None:
    replica = replica_of(pg_bed)
    primary_src = make_source(pg_bed.primary.dsn(), name="primary")
    replica_src = make_source(replica.dsn(), name="replica")
    sources += [primary_src, replica_src]
    sql(pg_bed.primary, "CREATE TABLE IF NOT EXISTS idle_marker (t timestamptz)")
    sql(pg_bed.primary, "INSERT INTO idle_marker VALUES (now())")

    # write/flush/replay_lag go NULL 10-20 s after the standby caught up; NULL must read
    # as 0 only because nothing is behind. A measured lag is never exactly 0.
    async def settled() -> bool:
        samples = await collect(primary_src)
        lags = [
            value(samples, "pg_replication_lag_seconds", standby="replica", kind=kind)
            for kind in ("write", "flush", "replay")
        ]
        return value(samples, "pg_replication_lag_bytes", standby="replica") == 0 and lags == [
            0.0,
            0.0,
            0.0,
        ]

    await wait_for(settled, timeout=60, interval=0.5)

    async def naive_age_grew_while_ours_stayed_zero() -> bool:
        samples = await collect(replica_src)
        assert value(samples, "pg_standby_receiver_up") == 1
        assert value(samples, "pg_standby_replay_lag_bytes") == 0
        assert value(samples, "pg_standby_last_replay_age_seconds") == 0
        naive = sql(replica, "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())")
        return float(naive[0][0]) >= 3.0

    await wait_for(naive_age_grew_while_ours_stayed_zero, timeout=20, interval=0.2)


@pytest.mark.parametrize("kind", ["write", "flush", "replay"])
def test_lag_kinds_use_their_own_byte_lag(kind: str) -> None:
    # a NULL replay_lag while replay is behind (write and flush caught up) is unknown
    behind = {"write": 0.0, "flush": 0.0, "replay": 4096.0}
    expected = None if kind == "replay" else 0.0
    assert lag_seconds(None, behind[kind]) == expected

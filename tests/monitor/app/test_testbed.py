"""Tests for monitor.testbed: real PostgreSQL primary + streaming replica."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.app.demo.testbed import PgServer, TestBed, TestBedError, find_pg_bin, run_workload

try:
    PG_BIN = find_pg_bin()
except TestBedError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"no PostgreSQL binaries: {exc}", allow_module_level=True)


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _one(server: PgServer, sql: str) -> object:
    rows = TestBed.run_sql(server, sql)
    assert len(rows) == 1
    return rows[0][0]


@pytest.fixture(scope="module")
def bed() -> Iterator[TestBed]:
    with TestBed(replica=True) as tb:
        yield tb


def _replica(bed: TestBed) -> PgServer:
    assert bed.replica is not None
    return bed.replica


def test_recovery_roles(bed: TestBed) -> None:
    assert _one(bed.primary, "SELECT pg_is_in_recovery()") is False
    assert _one(_replica(bed), "SELECT pg_is_in_recovery()") is True
    rows = TestBed.run_sql(bed.primary, "SELECT state FROM pg_stat_replication")
    assert ("streaming",) in rows
    if os.geteuid() == 0:
        assert bed.run_as in ("postgres", "app_monitor_pg")
        assert _one(bed.primary, "SELECT current_setting('data_directory')") == str(
            bed.primary.datadir
        )


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_servers_do_not_run_as_root(bed: TestBed) -> None:
    for server in (bed.primary, _replica(bed)):
        pid = server.pid()
        assert pid is not None
        assert os.stat(f"/proc/{pid}").st_uid == os.stat(server.datadir).st_uid
        if os.geteuid() == 0:
            assert os.stat(f"/proc/{pid}").st_uid != 0


def test_row_replicates(bed: TestBed) -> None:
    TestBed.run_sql(bed.primary, "CREATE TABLE repl_check (id int PRIMARY KEY, v text)")
    TestBed.run_sql(bed.primary, "INSERT INTO repl_check VALUES (%s, %s)", params=(1, "hello"))
    replica = _replica(bed)

    def visible() -> bool:
        try:
            rows = TestBed.run_sql(replica, "SELECT v FROM repl_check WHERE id = 1")
        except Exception:  # table not replayed yet
            return False
        return rows == [("hello",)]

    _wait_for(visible, what="row to reach the replica")


def test_pg_stat_statements(bed: TestBed) -> None:
    ext = TestBed.run_sql(
        bed.primary, "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
    )
    assert len(ext) == 1
    TestBed.run_sql(bed.primary, "SELECT 42 AS answer")
    queries = [r[0] for r in TestBed.run_sql(bed.primary, "SELECT query FROM pg_stat_statements")]
    assert any("answer" in q for q in queries)
    assert _one(bed.primary, "SHOW pg_stat_statements.track") == "all"
    assert _one(bed.primary, "SHOW track_io_timing") == "on"


def test_dsn(bed: TestBed) -> None:
    p = bed.primary
    assert p.dsn() == f"postgresql://postgres@127.0.0.1:{p.port}/postgres"
    assert p.dsn("app", "u@x", "p/w:d") == f"postgresql://u%40x:p%2Fw%3Ad@127.0.0.1:{p.port}/app"
    assert p.server_version_num() >= 100000
    assert p.logfile.parent == p.datadir


def test_workload(bed: TestBed) -> None:
    stop = threading.Event()
    t = threading.Thread(target=run_workload, args=(bed.primary.dsn(), stop), kwargs={"rate": 200})
    t.start()

    def rows_written() -> bool:
        try:
            n = _one(bed.primary, "SELECT count(*) FROM demo_orders")
        except Exception:  # table not created yet
            return False
        return isinstance(n, int) and n >= 5

    try:
        _wait_for(rows_written, what="workload rows")
    finally:
        stop.set()
        t.join(timeout=5)
    assert not t.is_alive()
    n = _one(
        bed.primary, "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%demo_orders%'"
    )
    assert isinstance(n, int) and n >= 2


def test_workload_survives_dead_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = threading.Event()
    t = threading.Thread(
        target=run_workload, args=(f"postgresql://postgres@127.0.0.1:{port}/postgres", stop)
    )
    t.start()
    time.sleep(0.3)  # let it fail to connect at least once
    assert t.is_alive()
    stop.set()
    t.join(timeout=5)
    assert not t.is_alive()


def test_primary_restart(bed: TestBed) -> None:
    p = bed.primary
    p.stop()
    assert not p.is_running()
    assert not _port_answers(p.port)
    p.stop()  # already stopped: no-op
    p.start()
    assert p.is_running()
    assert _one(p, "SELECT 1") == 1
    # The replica reconnects to the restarted primary.
    _wait_for(
        lambda: bool(
            TestBed.run_sql(p, "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'")
        ),
        timeout=20,
        what="replica to stream again",
    )


def test_close_removes_everything() -> None:
    tb = TestBed(replica=True)
    tb.start()
    assert tb.tmp_dir is not None and tb.replica is not None
    tmp, ports = tb.tmp_dir, [tb.primary.port, tb.replica.port]
    assert all(_port_answers(port) for port in ports)
    tb.replica.stop("immediate")  # close() must tolerate an already-stopped server
    tb.close()
    assert not tmp.exists()
    assert not any(_port_answers(port) for port in ports)
    tb.close()  # idempotent
    with pytest.raises(TestBedError):
        _ = tb.primary


def test_no_replica(tmp_path: Path) -> None:
    base = Path("/tmp") if os.geteuid() == 0 else tmp_path  # root: must be traversable
    with TestBed(replica=False, base_dir=base) as tb:
        assert tb.replica is None
        assert tb.tmp_dir is not None and tb.tmp_dir.parent == base.resolve()
        assert _one(tb.primary, "SELECT pg_is_in_recovery()") is False
        assert _one(tb.primary, "SELECT count(*) FROM pg_stat_replication") == 0
        tmp, port = tb.tmp_dir, tb.primary.port
    assert not tmp.exists()
    assert not _port_answers(port)


def test_find_pg_bin_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PG_BIN", str(PG_BIN))
    assert find_pg_bin() == PG_BIN
    monkeypatch.setenv("PG_BIN", str(tmp_path))
    with pytest.raises(TestBedError, match="PG_BIN"):
        find_pg_bin()


def test_start_failure_reports_log(monkeypatch: pytest.MonkeyPatch) -> None:
    tb = TestBed(replica=False)
    orig = TestBed._init_primary

    def broken(self: TestBed, primary: PgServer) -> None:
        orig(self, primary)
        primary.append_conf({"shared_buffers": "not-a-size"})

    monkeypatch.setattr(TestBed, "_init_primary", broken)
    with pytest.raises(TestBedError, match="shared_buffers"):
        tb.start()
    assert tb.tmp_dir is None  # cleaned up after the failure

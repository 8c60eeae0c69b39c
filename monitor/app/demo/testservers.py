"""Throw-away Redis, Memcached and PgBouncer servers on free ports in temp dirs.

Used by the tests (``tests/servers.py`` locates the binaries) and by ``monitor demo``.
Each context manager starts the given server binary, waits until it accepts
connections, and stops it (by its own pid) afterwards. ``restart()`` stops and starts
the same server on the same port. PgBouncer and Memcached refuse to run as root: as
root they run as an unprivileged system user (``postgres`` / ``memcache``, else
``nobody``), like the PostgreSQL test bed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

READY_TIMEOUT = 15.0


class ServerStartError(RuntimeError):
    """A server did not start or stop in time."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ServerStartError(f"{what} within {timeout:g}s")
        time.sleep(0.05)


def _unprivileged_user(*preferred: str) -> str | None:
    """The user to run a root-refusing server as; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in (*preferred, "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no unprivileged user to run the server as")


def _temp_dir(prefix: str, user: str | None) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class ServerProcess:
    """One server process started from ``argv``; restartable on the same port."""

    name: str
    argv: Sequence[str]
    port: int
    workdir: Path
    user: str | None = None
    env: dict[str, str] | None = None
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def logfile(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> None:
        uid = gid = None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            uid, gid = entry.pw_uid, entry.pw_gid
        with self.logfile.open("ab") as log:
            self.proc = subprocess.Popen(
                list(self.argv),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(self.env or {})},
                start_new_session=True,
                user=uid,
                group=gid,
                extra_groups=[] if uid is not None else None,
            )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with {proc.returncode}:\n{self.log_tail()}"
                )
            return _accepts(self.host, self.port)

        _poll(ready, READY_TIMEOUT, f"{self.name} did not accept connections on {self.port}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        # the port is free again once nothing listens on it
        _poll(lambda: not _accepts(self.host, self.port), 10, f"{self.name} still listens")

    def restart(self) -> None:
        self.stop()
        self.start()


S = TypeVar("S", bound="ServerProcess")


@contextlib.contextmanager
def _running(server: S) -> Iterator[S]:
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


# -- Redis ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


def self_signed_certificate(
    openssl: str, directory: Path, common_name: str = "localhost"
) -> TlsFiles:
    """A self-signed certificate for localhost and 127.0.0.1, made with ``openssl``."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={common_name}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return TlsFiles(cert, key)


@dataclass
class RedisServer(ServerProcess):
    tls: TlsFiles | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{self.host}:{self.port}/0"


@contextlib.contextmanager
def redis_server(
    binary: str, *, openssl: str | None = None, args: Sequence[str] = ()
) -> Iterator[RedisServer]:
    """A throwaway redis-server without persistence (a restart starts empty).

    With ``openssl`` (its path) it serves TLS only, with a self-signed certificate.
    ``args``: more command-line options, e.g. ``("--rename-command", "CONFIG", "")``.
    """
    workdir = _temp_dir("app-monitor-redis-", None)
    port = free_port()
    argv = [binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir), "--protected-mode", "no"]  # fmt: skip
    files = None
    if openssl is not None:
        files = self_signed_certificate(openssl, workdir)
        argv += ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(files.cert),
                 "--tls-key-file", str(files.key), "--tls-ca-cert-file", str(files.cert),
                 "--tls-auth-clients", "no"]  # fmt: skip
    else:
        argv += ["--port", str(port)]
    argv += list(args)
    with _running(RedisServer("redis", argv, port, workdir, tls=files)) as server:
        yield server


# -- Memcached -----------------------------------------------------------------------------


@dataclass
class MemcachedServer(ServerProcess):
    username: str | None = None
    password: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def memcached_supports_sasl(binary: str) -> bool:
    out = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=10).stdout
    return "sasl" in out.lower()


@contextlib.contextmanager
def memcached_server(
    binary: str,
    *,
    username: str | None = None,
    password: str | None = None,
    saslpasswd2: str = "saslpasswd2",
    memory_mb: int = 64,
) -> Iterator[MemcachedServer]:
    """A throwaway memcached; with ``username``, SASL PLAIN against its own sasldb
    (created with ``saslpasswd2``)."""
    user = _unprivileged_user("memcache")
    workdir = _temp_dir("app-monitor-memcached-", user)
    port = free_port()
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", str(memory_mb)]
    if user is not None:
        argv += ["-u", user]
    env: dict[str, str] = {}
    if username is not None:
        assert password is not None
        sasldb = workdir / "sasldb2"
        (workdir / "memcached.conf").write_text(f"mech_list: plain\nsasldb_path: {sasldb}\n")
        subprocess.run(
            [saslpasswd2, "-p", "-a", "memcached", "-c", "-f", str(sasldb), username],
            input=password.encode(), check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in workdir.iterdir():
                os.chown(path, entry.pw_uid, entry.pw_gid)
        argv.append("-S")
        env["SASL_CONF_PATH"] = str(workdir)
    server = MemcachedServer(
        "memcached", argv, port, workdir, user=user, env=env, username=username, password=password
    )
    with _running(server) as running:
        yield running


# -- PgBouncer -----------------------------------------------------------------------------


@dataclass
class PgBouncerServer(ServerProcess):
    admin_user: str = "postgres"

    def admin_url(self, user: str | None = None, password: str | None = None) -> str:
        auth = user or self.admin_user
        if password is not None:
            auth += f":{password}"
        return f"postgresql://{auth}@{self.host}:{self.port}/pgbouncer?sslmode=disable"

    def database_url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{database}?sslmode=disable"


@contextlib.contextmanager
def pgbouncer_server(
    binary: str,
    upstream_host: str,
    upstream_port: int,
    *,
    pool_size: int = 2,
    pool_mode: str = "transaction",
    users: dict[str, str] | None = None,
) -> Iterator[PgBouncerServer]:
    """PgBouncer in front of ``upstream`` with every database proxied (``*``).

    ``users`` (name -> password, plain text) go into the auth file; ``postgres`` is
    always there without a password (trust for it; md5 for users with a password).
    """
    user = _unprivileged_user("postgres")
    workdir = _temp_dir("app-monitor-pgbouncer-", user)
    port = free_port()
    userlist = {"postgres": "", **(users or {})}
    (workdir / "userlist.txt").write_text(
        "".join(f'"{name}" "{password}"\n' for name, password in userlist.items())
    )
    hba = ["host all postgres 127.0.0.1/32 trust"]
    hba += [f"host all {name} 127.0.0.1/32 md5" for name in users or {}]
    (workdir / "hba.conf").write_text("\n".join(hba) + "\n")
    stats_users = ",".join(users or {}) or "postgres"
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={upstream_host} port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = hba
auth_hba_file = {workdir / "hba.conf"}
auth_file = {workdir / "userlist.txt"}
admin_users = postgres
stats_users = {stats_users}
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 50
logfile = {workdir / "pgbouncer-own.log"}
pidfile = {workdir / "pgbouncer.pid"}
"""
    )
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in workdir.iterdir():
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = PgBouncerServer(
        "pgbouncer", [binary, str(workdir / "pgbouncer.ini")], port, workdir, user=user
    )
    with _running(server) as running:
        yield running

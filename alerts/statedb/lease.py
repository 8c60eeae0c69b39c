"""Leadership as a lease: one row, renewed before it expires, with a fencing token.

``monitor_alert_leader`` holds one row (``id = 1``): the ``holder`` (a random id per
process), the fencing ``token`` and ``expires_at`` (seconds since the epoch by the
*database server's* clock, so daemons on different hosts need no clock agreement).

Taking and renewing is one conditional ``UPDATE ... RETURNING token``:

* the holder, with its token, extends ``expires_at`` (the token stays);
* anyone takes a lease that has expired, and the token goes up by one.

The row lock the ``UPDATE`` takes serialises two daemons trying at once (PostgreSQL
re-checks the ``WHERE`` clause after waiting: only the first wins; SQLite serialises
all writers). This is the ``SELECT ... FOR UPDATE`` pattern in one statement.

Locally the holder counts its lease from *before* it sent the request
(``valid_until = monotonic at send + lease``); the server's expiry is later, so the old
holder always stops delivering before anyone else can take over.

A holder is named ``<machine>:<pid>:<random>``, ``<machine>`` identifying this host,
boot and PID namespace. A daemon restarted on the same machine after a crash takes a
lease whose holder process is gone at once instead of waiting for it to expire (the
check is made only for a holder in the same PID namespace, where it is reliable).

Fencing: every write of the leader checks the token in the same transaction
(:class:`Fenced` when another daemon took over), and delivery sends nothing while the
local lease has run out (a process resumed after SIGSTOP must renew first, which fails
with a stale token).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
import uuid
from abc import abstractmethod

from alerts.statedb.base import Leadership, StateDbError

LEASE_SCHEMA = """CREATE TABLE IF NOT EXISTS monitor_alert_leader (
    id INTEGER PRIMARY KEY, holder TEXT NOT NULL, token BIGINT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL)"""
LEASE_ROW = (
    "INSERT INTO monitor_alert_leader (id, holder, token, expires_at) "
    "VALUES (1, '', 0, 0) ON CONFLICT (id) DO NOTHING"
)
FENCE = "SELECT token FROM monitor_alert_leader WHERE id = 1"
HOLDER = "SELECT holder FROM monitor_alert_leader WHERE id = 1"
RELEASE = "UPDATE monitor_alert_leader SET expires_at = 0 WHERE id = 1 AND holder = ? AND token = ?"
"""Parameters: holder, token. Ends the lease at once, so a follower takes over quickly."""


def acquire_sql(now: str) -> str:
    """The take-or-renew statement, ``now`` being the server clock in epoch seconds.
    Parameters: holder, token, holder, lease seconds, holder, token, a dead holder."""
    return (
        "UPDATE monitor_alert_leader SET "
        "token = CASE WHEN holder = ? AND token = ? THEN token ELSE token + 1 END, "
        f"holder = ?, expires_at = {now} + ? "
        f"WHERE id = 1 AND ((holder = ? AND token = ?) OR expires_at <= {now} OR holder = ?) "
        "RETURNING token"
    )


def _machine() -> str:
    parts = [socket.gethostname()]
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        with contextlib.suppress(OSError):
            parts.append(
                os.readlink(path) if path.endswith("/pid") else open(path).read().strip()  # noqa: SIM115
            )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


MACHINE = _machine()
NO_HOLDER = "-"
"""Matches no holder (holders are ``<machine>:<pid>:<random>``)."""


def dead_holder(holder: str | None) -> str:
    """``holder`` if it is a process of this machine that no longer exists, else a value
    that matches no holder."""
    if not holder:
        return NO_HOLDER
    machine, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if machine != MACHINE or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return NO_HOLDER
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return holder
    except OSError:
        pass  # exists, another user's
    return NO_HOLDER


class Fenced(StateDbError):
    """A write by a daemon whose fencing token is no longer the current one."""


def check_token(current: int | None, mine: int) -> None:
    if current != mine:
        raise Fenced(f"leadership lost: fencing token {mine} is stale (now {current})")


class Lease(Leadership):
    """The lease logic; a store supplies :meth:`_acquire` and :meth:`_release`."""

    def __init__(self, lease: float) -> None:
        self.lease = lease
        self.holder = f"{MACHINE}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._token: int | None = None
        self._valid_until = 0.0

    @property
    def token(self) -> int | None:
        return self._token

    def fresh(self) -> bool:
        return self._token is not None and time.monotonic() < self._valid_until

    @abstractmethod
    async def _acquire(self, holder: str, token: int, lease: float) -> int | None:
        """Run :data:`HOLDER`, then :func:`acquire_sql` (with :func:`dead_holder` of what
        it read) in one transaction; the token on success, None when another holds it."""

    @abstractmethod
    async def _release(self, holder: str, token: int) -> None: ...

    async def try_acquire(self) -> bool:
        sent = time.monotonic()
        mine = -1 if self._token is None else self._token
        got = await self._acquire(self.holder, mine, self.lease)
        if got is None:
            self._token = None
            self._valid_until = 0.0
            return False
        self._token = got
        self._valid_until = sent + self.lease
        return True

    async def still_held(self) -> bool:
        if self._token is None:
            return False
        return await self.try_acquire()

    async def release(self) -> None:
        token, self._token, self._valid_until = self._token, None, 0.0
        if token is not None:
            await self._release(self.holder, token)

"""The state database interface and leader election."""

from __future__ import annotations

from abc import ABC, abstractmethod

from alerts.statedb.records import Changes, SilenceRow, StateData


class StateDbError(Exception):
    """The state database could not be reached or written (message is secret-free)."""


class StateDb(ABC):
    description: str
    """Where the state lives, with credentials masked (for logs and ``monitor check``)."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and create the tables if needed."""

    @abstractmethod
    async def load(self) -> StateData: ...

    @abstractmethod
    async def apply(self, changes: Changes, token: int | None = None) -> None:
        """Write one batch atomically; with a fencing ``token``, only while it is still
        the current one (else :class:`~alerts.statedb.lease.Fenced`, nothing written)."""

    async def pooling_problem(self) -> str | None:
        """Why this store's connections are unfit for leadership (a transaction-mode
        pooler in between), or None."""
        return None

    @abstractmethod
    async def load_silences(self) -> list[SilenceRow]:
        """Every runtime silence kept (active, future and recently ended)."""

    @abstractmethod
    async def add_silence(self, row: SilenceRow, prune_before: float) -> None:
        """Store a runtime silence and drop those that ended before ``prune_before``."""

    @abstractmethod
    async def expire_silence(self, silence_id: str, now: float) -> bool:
        """End a runtime silence at ``now``; False when no silence has that id."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def leadership(self) -> Leadership:
        """The leader election that goes with this store."""


class Leadership(ABC):
    """Only the leader delivers notifications; the others keep trying to become it."""

    @property
    def token(self) -> int | None:
        """The fencing token while leading (None: no fencing, or not leading)."""
        return None

    def fresh(self) -> bool:
        """True while the lease this process holds has not run out by its own clock."""
        return True

    @abstractmethod
    async def try_acquire(self) -> bool:
        """True if this process now holds leadership, False if another one does.

        Raises :class:`StateDbError` when that cannot be told (store unreachable).
        """

    @abstractmethod
    async def still_held(self) -> bool:
        """False (or :class:`StateDbError`) once leadership has been lost."""

    @abstractmethod
    async def release(self) -> None: ...

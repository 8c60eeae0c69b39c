"""The journal: what changed in memory since the last write to the state database.

The outbox, the ledger and the persistence stage note the keys they change here; the
persistence stage turns them into one :class:`~alerts.statedb.records.Changes` batch
per flush and, when the write fails, puts them back for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.statedb.records import HistoryRow


@dataclass(slots=True)
class Journal:
    instances: set[str] = field(default_factory=set)
    notifications: set[tuple[str, str]] = field(default_factory=set)
    outbox: set[int] = field(default_factory=set)
    receivers: set[str] = field(default_factory=set)
    history: list[HistoryRow] = field(default_factory=list)
    history_reset: list[tuple[str, str]] = field(default_factory=list)
    history_dropped: list[tuple[str, str, float]] = field(default_factory=list)
    history_before: dict[str, float] = field(default_factory=dict)

    def take(self) -> Journal:
        """Everything noted so far, leaving this journal empty."""
        taken = Journal(
            self.instances,
            self.notifications,
            self.outbox,
            self.receivers,
            self.history,
            self.history_reset,
            self.history_dropped,
            self.history_before,
        )
        self.clear()
        return taken

    def put_back(self, older: Journal) -> None:
        """An unwritten ``older`` journal comes before what was noted since."""
        self.instances |= older.instances
        self.notifications |= older.notifications
        self.outbox |= older.outbox
        self.receivers |= older.receivers
        self.history = older.history + self.history
        self.history_reset = older.history_reset + self.history_reset
        self.history_dropped = older.history_dropped + self.history_dropped
        self.history_before = {**older.history_before, **self.history_before}

    def clear(self) -> None:
        self.instances = set()
        self.notifications = set()
        self.outbox = set()
        self.receivers = set()
        self.history = []
        self.history_reset = []
        self.history_dropped = []
        self.history_before = {}

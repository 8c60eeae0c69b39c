"""The ledger: what each receiver was told about each alert, and each receiver's health.

A :class:`Notification` per (alert instance, receiver) says whether a trigger is queued,
sent, failed or was silenced, with the dedup and routing keys a resolve must reuse.
A receiver that refused a notification permanently is marked broken (the
``MonitorReceiverBroken`` alert reads :meth:`Ledger.receivers_up`) until it delivers
again or its configuration changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

import structlog

from alerts.instance import Clock
from alerts.notify.journal import Journal
from alerts.receivers.base import Receiver
from alerts.statedb.records import QUEUED, SENT, SILENCED, Notification, ReceiverStatus

log = structlog.get_logger("alerts")

Key = tuple[str, str]
"""(instance key, receiver name)."""


class Ledger:
    def __init__(
        self,
        receivers: Mapping[str, Receiver],
        journal: Journal,
        *,
        on_receivers_change: Callable[[], None] | None = None,
    ) -> None:
        self.receivers = receivers
        self.notifications: dict[Key, Notification] = {}
        self._by_instance: dict[str, set[str]] = {}
        self.receiver_status: dict[str, ReceiverStatus] = {}
        self._journal = journal
        self._on_receivers_change = on_receivers_change or (lambda: None)

    # ------------------------------------------------------------------ notifications

    def get(self, instance_key: str, receiver: str) -> Notification | None:
        return self.notifications.get((instance_key, receiver))

    def told_about(self, instance_key: str) -> list[Notification]:
        """Every receiver's record for this alert instance."""
        names = sorted(self._by_instance.get(instance_key, ()))
        return [self.notifications[(instance_key, name)] for name in names]

    def put(self, record: Notification) -> None:
        key = (record.instance_key, record.receiver)
        self.notifications[key] = record
        self._by_instance.setdefault(record.instance_key, set()).add(record.receiver)
        self._journal.notifications.add(key)

    def forget(self, instance_key: str, receiver: str) -> None:
        self.notifications.pop((instance_key, receiver), None)
        names = self._by_instance.get(instance_key)
        if names is not None:
            names.discard(receiver)
            if not names:
                del self._by_instance[instance_key]
        self._journal.notifications.add((instance_key, receiver))

    def trigger_done(self, instance_key: str, receiver: str, status: str, now: Clock) -> None:
        """The queued trigger was delivered (``SENT``) or refused for good (``FAILED``).

        A refused *repeat* leaves the record ``SENT`` (its first trigger opened an incident
        that still needs its resolve); ``first_sent_at`` is set only by a delivery."""
        record = self.get(instance_key, receiver)
        if record is None or record.status != QUEUED:
            return
        delivered = status == SENT
        if not delivered and record.first_sent_at is not None:
            status = SENT
        self.put(
            replace(
                record,
                status=status,
                first_sent_at=record.first_sent_at or (now.wall if delivered else None),
                last_sent_at=now.wall,
            )
        )

    def trigger_silenced(self, instance_key: str, receiver: str) -> None:
        """The queued trigger was dropped by a silence at delivery time."""
        record = self.get(instance_key, receiver)
        if record is not None and record.status == QUEUED:
            status = SILENCED if record.first_sent_at is None else SENT
            self.put(replace(record, status=status))

    # ------------------------------------------------------------------ receiver health

    def receivers_up(self) -> dict[str, bool]:
        return {
            name: self.receiver_status.get(name) is None
            or self.receiver_status[name].broken_reason is None
            for name in self.receivers
        }

    def receiver_ok(self, name: str) -> None:
        status = self.receiver_status.get(name)
        if status is not None and status.broken_reason is not None:
            log.info("receiver delivers again", receiver=name)
            self.receiver_status[name] = replace(status, broken_reason=None, broken_since=None)
            self._journal.receivers.add(name)
            self._on_receivers_change()

    def receiver_broken(self, name: str, reason: str, now: Clock) -> None:
        receiver = self.receivers.get(name)
        if receiver is None:
            return
        log.error(
            "receiver refused a notification permanently; not retrying it",
            receiver=name,
            error=reason,
        )
        current = self.receiver_status.get(name)
        if current is not None and current.broken_reason is not None:
            return
        self.receiver_status[name] = ReceiverStatus(name, receiver.fingerprint(), reason, now.wall)
        self._journal.receivers.add(name)
        self._on_receivers_change()

    # ------------------------------------------------------------------ leadership

    def adopt(
        self,
        notifications: Iterable[Notification],
        statuses: Iterable[ReceiverStatus],
        *,
        keep_memory: bool,
    ) -> None:
        """Take over the stored records; with ``keep_memory`` this process's own win (and
        are written out). A stored broken status holds only for an unchanged receiver."""
        mine = dict(self.notifications)
        records = {(n.instance_key, n.receiver): n for n in notifications}
        by_status = {s.name: s for s in statuses}
        if keep_memory:  # what memory forgot while the store was down stays forgotten
            for key in self._journal.notifications - set(mine):
                records.pop(key, None)
            records.update(mine)
            self._journal.notifications |= set(mine)
            by_status.update(self.receiver_status)
        self.notifications = records
        self._by_instance = {}
        for instance_key, name in records:
            self._by_instance.setdefault(instance_key, set()).add(name)
        self.receiver_status = {}
        for status in by_status.values():
            receiver = self.receivers.get(status.name)
            if receiver is not None and receiver.fingerprint() == status.fingerprint:
                self.receiver_status[status.name] = status

    def clear(self) -> None:
        """Forget the records (another daemon owns them); receiver health is kept."""
        self.notifications = {}
        self._by_instance = {}

"""A coalesced message refused permanently: its alerts sent one by one.

A permanent refusal of a message listing several alerts (Slack ``400 invalid_payload``)
may be caused by one of them, a *poison* alert, rather than by the receiver. Delivery
then sends each of the message's alerts alone:

* an alert delivered alone is done;
* a trigger refused alone is dropped (the ledger says ``failed``);
* a resolve refused alone is retried with backoff, never dropped: a missing resolve
  leaves an incident open;
* the receiver is called broken only when none of the split message's alerts got
  through (a bad webhook refuses them all; a poison alert refuses only itself).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Split:
    remaining: set[int]
    reason: str
    delivered: bool = False


@dataclass
class Splits:
    alone: set[int] = field(default_factory=set)
    """Rows sent in a message of their own."""
    _open: dict[str, Split] = field(default_factory=dict)

    def start(self, receiver: str, ids: Iterable[int], reason: str) -> None:
        ids = set(ids)
        self.alone |= ids
        split = self._open.setdefault(receiver, Split(set(), reason))
        split.remaining |= ids

    def finish(
        self, receiver: str, ids: Iterable[int], *, delivered: bool, reason: str, keep: bool
    ) -> str | None:
        """Rows sent alone are done (``keep``: they stay alone, e.g. a resolve retried).
        Returns why the receiver is broken, if it is: a refusal outside any split, or
        a split whose last row is done without any delivered."""
        ids = set(ids)
        if not keep:
            self.alone -= ids
        split = self._open.get(receiver)
        if split is None or not ids & split.remaining:
            return None if delivered else reason
        split.remaining -= ids
        split.delivered = split.delivered or delivered
        if split.remaining:
            return None
        del self._open[receiver]
        return None if split.delivered else split.reason

    def clear(self) -> None:
        self.alone.clear()
        self._open.clear()

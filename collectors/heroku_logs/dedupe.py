"""Remember ``Logplex-Frame-Id`` values for a while: Logplex keeps the id on every retry.

A retry is not byte-identical: Logplex may put an L10 notice (messages it dropped
meanwhile) in front. So an entry also keeps the L10 lines already counted for the id;
the endpoint counts only new ones from a retry. Bounded by age and by count.
"""

from __future__ import annotations

from collections import OrderedDict


class FrameIds:
    def __init__(self, window: float, max_ids: int) -> None:
        self._window = window
        self._max = max_ids
        self._seen: OrderedDict[tuple[str, str], tuple[float, frozenset[bytes]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def get(self, key: tuple[str, str], now: float) -> frozenset[bytes] | None:
        """The L10 lines counted under ``key`` when it was seen within the window."""
        self._expire(now)
        found = self._seen.get(key)
        return None if found is None else found[1]

    def add(self, key: tuple[str, str], now: float, l10: frozenset[bytes]) -> None:
        previous = self._seen.pop(key, None)
        if previous is not None:
            l10 = previous[1] | l10
            now = previous[0]
        self._seen[key] = (now, l10)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)

    def _expire(self, now: float) -> None:
        limit = now - self._window
        seen = self._seen
        while seen:
            key, (at, _) = next(iter(seen.items()))
            if at >= limit:
                break
            del seen[key]

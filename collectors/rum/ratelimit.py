"""Token buckets per client address, in bounded memory (least recently seen forgotten)."""

from __future__ import annotations

from collections import OrderedDict


class RateLimiter:
    def __init__(self, per_second: float, burst: int, max_clients: int) -> None:
        self.per_second = per_second
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, client: str, now: float) -> bool:
        """Take a token for ``client`` if it has one; ``now`` is a monotonic time."""
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._buckets.popitem(last=False)
            bucket = self._buckets[client] = [self.burst, now]
        else:
            self._buckets.move_to_end(client)
            tokens = bucket[0] + (now - bucket[1]) * self.per_second
            bucket[0] = tokens if tokens < self.burst else self.burst
            bucket[1] = now
        if bucket[0] < 1.0:
            return False
        bucket[0] -= 1.0
        return True

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(peer: str | None, forwarded_for: str | None, trusted_hops: int) -> str:
    """The client as seen by the outermost trusted proxy.

    Each trusted proxy appends the address it received the request from to
    ``X-Forwarded-For``; entries further left are whatever the client claimed.
    """
    if trusted_hops and forwarded_for:
        hops = [h.strip() for h in forwarded_for.split(",")]
        if len(hops) >= trusted_hops and hops[-trusted_hops]:
            return hops[-trusted_hops]
    return peer or "unknown"

"""A bounded, in-memory queue of collected samples waiting to be pushed.

Collections go in whole; requests come out as :class:`Chunk` objects of at most
``max_samples_per_send`` samples, oldest first, grouped by series so that a series
queued across several collections (after an outage) is sent once with all its points
in time order, which is also the order the receiver's TSDB requires.

The chunk being sent stays *in flight* until :meth:`SampleQueue.done`: a retry sends
the same bytes again. The bound counts queued and in-flight samples; past it the oldest
samples are dropped and counted by the caller: first from the in-flight chunk when it
is waiting for a retry (not while a request carrying it is on the wire; it is then
re-encoded), then from the head of the queue.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from monitor.kernel.remote_write.series import Batch, SeriesKey


@dataclass(slots=True)
class Chunk:
    """The samples of one request, by series, each series' points in time order."""

    series: dict[SeriesKey, list[tuple[int, float]]] = field(default_factory=dict)
    samples: int = 0
    body: bytes | None = None
    """The encoded request, kept for retries."""


class SampleQueue:
    def __init__(self, max_samples: int) -> None:
        if max_samples < 1:
            raise ValueError("max_samples must be at least 1")
        self.max_samples = max_samples
        self._batches: deque[Batch] = deque()
        self._queued = 0
        self.in_flight: Chunk | None = None
        self.sending = False
        """Set while a request carrying the in-flight chunk is on the wire."""

    def __len__(self) -> int:
        """Samples held: queued plus in flight."""
        return self._queued + (self.in_flight.samples if self.in_flight else 0)

    def put(self, batch: Batch) -> int:
        """Queue a collection; returns how many of the oldest samples were dropped."""
        if len(batch):
            self._batches.append(batch)
            self._queued += len(batch)
        dropped = 0
        excess = len(self) - self.max_samples
        if excess > 0 and self.in_flight is not None and not self.sending:
            dropped = self._trim_in_flight(excess)
            excess -= dropped
        while excess > 0 and self._batches:
            head = self._batches[0]
            if len(head) <= excess:
                self._batches.popleft()
                taken = len(head)
            else:
                taken = excess
                head.start += taken
            self._queued -= taken
            dropped += taken
            excess -= taken
        return dropped

    def _trim_in_flight(self, count: int) -> int:
        """Drop the ``count`` oldest samples of the in-flight chunk; returns how many."""
        chunk = self.in_flight
        assert chunk is not None
        if count >= chunk.samples:
            self.in_flight = None
            return chunk.samples
        # oldest first; among equal timestamps, the series first queued (a stable sort)
        order = sorted(
            (
                (points[i][0], key)
                for key, points in chunk.series.items()
                for i in range(len(points))
            ),
            key=lambda entry: entry[0],
        )
        cut: dict[SeriesKey, int] = {}
        for _, key in order[:count]:
            cut[key] = cut.get(key, 0) + 1
        for key, n in cut.items():
            rest = chunk.series[key][n:]
            if rest:
                chunk.series[key] = rest
            else:
                del chunk.series[key]
        chunk.samples -= count
        chunk.body = None
        return count

    def take(self, max_samples: int) -> Chunk | None:
        """The chunk in flight, or the next one taken from the queue; None if empty."""
        if self.in_flight is not None:
            return self.in_flight
        if not self._batches:
            return None
        chunk = Chunk()
        series = chunk.series
        room = max_samples
        while room > 0 and self._batches:
            batch = self._batches[0]
            end = min(len(batch.keys), batch.start + room)
            keys, values, stamps = batch.keys, batch.values, batch.timestamps
            for i in range(batch.start, end):
                points = series.get(keys[i])
                if points is None:
                    series[keys[i]] = [(stamps[i], values[i])]
                else:
                    points.append((stamps[i], values[i]))
            taken = end - batch.start
            room -= taken
            chunk.samples += taken
            self._queued -= taken
            if end == len(batch.keys):
                self._batches.popleft()
            else:
                batch.start = end
        self.in_flight = chunk
        return chunk

    def done(self) -> Chunk | None:
        """The in-flight chunk left (sent or rejected): forget it and return it."""
        chunk, self.in_flight = self.in_flight, None
        return chunk

    def drain(self) -> int:
        """Forget everything (in flight included); returns how many samples that was."""
        count = len(self)
        self._batches.clear()
        self._queued = 0
        self.in_flight = None
        return count

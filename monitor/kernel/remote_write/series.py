"""Read the exposition registry the way a scrape would, as timestamped samples to push.

Every sample of every family on the daemon's private registry becomes one series, named
and labelled exactly as ``/metrics`` shows it (``_total``, ``_bucket``, ``_info``...),
plus the push's own labels (``job``, ``instance``, anything configured) where the
sample has no label of that name. Label tuples are sorted by name, as remote_write
receivers require, and interned: a series pushed every interval shares one key object
across every queued collection, so a queued sample costs two machine words.

A series present in the previous collection and missing now gets Prometheus' staleness
marker, so it ends in the receiver at once, as it would after a failed scrape, instead
of lingering for the five-minute lookback.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from prometheus_client.registry import Collector

SeriesKey = tuple[tuple[str, str], ...]
"""Sorted ``(label, value)`` pairs, ``__name__`` included."""

STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
"""Prometheus' staleness marker: a NaN with a payload the TSDB recognises."""

_TEXT_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram"}
"""How the 0.0.4 text format declares the types it lacks (prometheus_client exposition)."""
_NAME_SUFFIX = {"counter": "_total", "info": "_info"}


def is_stale_marker(value: float) -> bool:
    return math.isnan(value) and struct.pack("<d", value) == struct.pack("<d", STALE_NAN)


class Metadata(NamedTuple):
    """What ``# TYPE`` and ``# HELP`` say of a family in the text exposition."""

    name: str
    type: str
    help: str


@dataclass(slots=True)
class Batch:
    """One collection: parallel arrays of series, values and millisecond timestamps."""

    keys: list[SeriesKey] = field(default_factory=list)
    values: array[float] = field(default_factory=lambda: array("d"))
    timestamps: array[int] = field(default_factory=lambda: array("q"))
    start: int = 0
    """Samples before this index have left the batch (sent or dropped)."""

    def __len__(self) -> int:
        return len(self.keys) - self.start

    def add(self, key: SeriesKey, value: float, timestamp_ms: int) -> None:
        self.keys.append(key)
        self.values.append(value)
        self.timestamps.append(timestamp_ms)


class SeriesReader:
    """Collects a registry into :class:`Batch` objects, with staleness markers."""

    def __init__(self, registry: Collector, labels: Mapping[str, str]) -> None:
        self._registry = registry
        self._labels = dict(labels)
        self._previous: dict[SeriesKey, SeriesKey] = {}
        self.metadata: dict[str, Metadata] = {}
        """The latest type and help of every family, by exposed name."""

    @property
    def series(self) -> int:
        """Series in the latest collection."""
        return len(self._previous)

    def read(self, now: float) -> Batch:
        """Every current sample at ``now`` (or its own timestamp), plus staleness markers."""
        now_ms = int(now * 1000)
        batch = Batch()
        current: dict[SeriesKey, SeriesKey] = {}
        previous = self._previous
        metadata: dict[str, Metadata] = {}
        extra = self._labels
        for family in self._registry.collect():
            meta = _metadata(family.name, family.type, family.documentation)
            metadata[meta.name] = meta
            for sample in family.samples:
                labels = dict(sample.labels)
                labels["__name__"] = sample.name
                for name, value in extra.items():
                    labels.setdefault(name, value)
                key = _key(labels.items())
                key = previous.get(key, key)
                if key in current:
                    continue  # the exposition never shows a series twice either
                current[key] = key
                ts = now_ms if sample.timestamp is None else int(float(sample.timestamp) * 1000)
                batch.add(key, float(sample.value), ts)
        for key in previous.keys() - current.keys():
            batch.add(key, STALE_NAN, now_ms)
        self._previous = current
        self.metadata = metadata
        return batch


def _key(items: Iterable[tuple[str, str]]) -> SeriesKey:
    return tuple(sorted(items))


def _metadata(name: str, kind: str, help: str) -> Metadata:
    return Metadata(name + _NAME_SUFFIX.get(kind, ""), _TEXT_TYPES.get(kind, kind), help)

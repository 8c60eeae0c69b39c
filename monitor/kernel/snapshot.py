"""Immutable results of one collection: what collectors return and the store keeps.

Collectors know nothing of Prometheus: they describe each metric once with a
:class:`MetricSpec` and return :class:`Sample` values of it. The exposition layer and the
rule evaluator both read these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class MetricKind(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A metric family: its exported name, type, help text and label names.

    Counter names end in ``_total`` as exported. Every family carries a ``target`` label
    first; ``labels`` lists the others in order.
    """

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    label_names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """``("target", *labels)``: computed once, read for every sample rendered or matched."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "label_names", ("target", *self.labels))

    def __call__(self, value: float, *label_values: str, target: str) -> Sample:
        """Build a sample: ``PG_UP(1, target="primary")``."""
        if len(label_values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {label_values!r}")
        return Sample(self, (target, *label_values), float(value))


def gauge(name: str, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, MetricKind.GAUGE, help, labels)


def counter(name: str, help: str, *labels: str) -> MetricSpec:
    if not name.endswith("_total"):
        raise ValueError(f"counter {name!r} must end in _total")
    return MetricSpec(name, MetricKind.COUNTER, help, labels)


def info(name: str, help: str, *labels: str) -> MetricSpec:
    if not name.endswith("_info"):
        raise ValueError(f"info metric {name!r} must end in _info")
    return MetricSpec(name, MetricKind.INFO, help, labels)


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one series; ``label_values`` starts with the target."""

    spec: MetricSpec
    label_values: tuple[str, ...]
    value: float

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def labels(self) -> dict[str, str]:
        return dict(zip(self.spec.label_names, self.label_values, strict=True))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one run of one collector job produced.

    ``ok`` is false when the run failed or timed out; ``samples`` then holds only what
    the collector reports for a failure (e.g. ``pg_up 0``), never stale values.
    """

    collector: str
    target: str
    samples: tuple[Sample, ...]
    ok: bool
    started_at: float
    """Wall-clock time the run started (seconds since the epoch)."""
    duration: float
    error: str | None = None
    monotonic: float = field(default=0.0, compare=False)
    """Monotonic clock reading when the snapshot was stored."""

    def values(self, name: str) -> dict[tuple[str, ...], float]:
        return {s.label_values: s.value for s in self.samples if s.spec.name == name}


def find(samples: Iterable[Sample], name: str, **labels: str) -> list[Sample]:
    """Samples of metric ``name`` whose labels include ``labels``."""
    return [
        s
        for s in samples
        if s.spec.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value_of(samples: Iterable[Sample], name: str, **labels: str) -> float | None:
    found = find(samples, name, **labels)
    if len(found) > 1:
        raise LookupError(f"{len(found)} samples of {name} match {labels}")
    return found[0].value if found else None

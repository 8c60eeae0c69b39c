"""The snapshot store's samples as exposition text, in both formats, from per-snapshot caches.

A scrape after a collection must render every sample again, and tens of thousands of
samples through prometheus_client's generators take hundreds of ms. :class:`StoreText`
writes the same bytes as ``generate_latest`` (Prometheus text 0.0.4) and as
prometheus_client's OpenMetrics ``generate_latest`` for :class:`~monitor.exposition.StoreCollector`
(labels sorted by name, Go float formatting, the first sample of a duplicate series wins),
and rebuilds only the snapshots that changed.

The two formats share every sample line: a counter's sample is ``x_total{...}`` in both,
an info sample ``x_info{...} 1.0``, and label values are escaped alike. Only the family
headers differ: OpenMetrics names a counter's family without ``_total`` and an info's
without ``_info``, escapes ``"`` in HELP, adds ``# UNIT`` when the family name ends in a
unit, and the exposition ends in ``# EOF`` (added by the caller, after the other parts).

:meth:`StoreText.render` takes the snapshots to render as an argument and holds a lock
while it updates its caches, so it can run in a worker thread while the event loop
keeps storing new snapshots.
"""

from __future__ import annotations

import itertools
import math
import operator
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from monitor.kernel.snapshot import MetricKind, MetricSpec, Sample, Snapshot
from monitor.kernel.snapshot_store import JobKey

UNITS = ("seconds", "bytes", "ratio", "celsius", "joules", "meters", "grams", "volts", "amperes")
"""Base units (OpenMetrics, Prometheus naming practices) a family name may end in."""


def family_name(spec: MetricSpec) -> str:
    """The OpenMetrics family name: a counter without ``_total``, an info without ``_info``."""
    if spec.kind is MetricKind.COUNTER:
        return spec.name.removesuffix("_total")
    if spec.kind is MetricKind.INFO:
        return spec.name.removesuffix("_info")
    return spec.name


def unit_of(spec: MetricSpec) -> str:
    """The unit a family's name carries (``"seconds"`` for ``x_seconds_total``), or ``""``.

    OpenMetrics requires the family name to end in ``_<unit>``; info families have none.
    """
    if spec.kind is MetricKind.INFO:
        return ""
    name = family_name(spec)
    for unit in UNITS:
        if name.endswith("_" + unit) and len(name) > len(unit) + 1:
            return unit
    return ""


def text_header(spec: MetricSpec) -> str:
    kind = "counter" if spec.kind is MetricKind.COUNTER else "gauge"
    text = spec.help.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {spec.name} {text}\n# TYPE {spec.name} {kind}\n"


def openmetrics_header(spec: MetricSpec) -> str:
    name = family_name(spec)
    text = spec.help.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    header = f"# HELP {name} {text}\n# TYPE {name} {spec.kind.value}\n"
    unit = unit_of(spec)
    if unit:
        header += f"# UNIT {name} {unit}\n"
    return header


def go_float(value: float) -> str:
    """``floatToGoString(value)``, with the common case inlined."""
    if math.isfinite(value):
        text = repr(value)
        if value <= 0 or text.find(".") <= 6:
            return text
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def escape_label(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


_Labelsets = set[tuple[str, ...]]
_Chunk = tuple[MetricSpec, str, _Labelsets]
"""One family's part of one snapshot: its spec, sample lines, label value tuples."""
_Layout = dict[str, tuple[MetricSpec, tuple[int, ...], _Labelsets]]
"""Per family of a snapshot: its spec, the positions of its samples (duplicates left
out), and their label value tuples."""

_spec_of = operator.attrgetter("spec")
_values_of = operator.attrgetter("label_values")


@dataclass(slots=True)
class _JobText:
    """One job's last snapshot and its rendering."""

    snapshot: Snapshot
    layout: _Layout
    lines: list[str]
    """Each sample's line, by position in the snapshot."""
    chunks: dict[str, _Chunk]


class StoreText:
    """Renders snapshots' samples in either format, rebuilding only what changed.

    Per job, a new snapshot with the same series in the same order as the last one (the
    usual case: a collector reports the same statements, tables, keys again) reuses the
    last one's grouping into families, and the lines of the Sample objects it hands back
    unchanged (the statements collector does so for an unchanged statement). Only the
    changed samples are formatted; the work per unchanged sample (an identity test, a
    list copy, the joins) runs in C, so tens of thousands of samples render in a few ms.
    """

    LABEL_CACHE_LIMIT = 500_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[JobKey, _JobText] = {}
        self._label_order: dict[MetricSpec, tuple[tuple[int, str], ...]] = {}
        self._label_text: dict[tuple[str, tuple[str, ...]], str] = {}
        self._headers: dict[tuple[MetricSpec, bool], str] = {}

    def render(self, snapshots: Sequence[Snapshot], openmetrics: bool = False) -> str:
        """The samples of ``snapshots`` (the store's live ones, in order) as text."""
        with self._lock:
            return self._render(snapshots, openmetrics)

    def _render(self, snapshots: Sequence[Snapshot], openmetrics: bool) -> str:
        families: dict[str, tuple[MetricSpec, list[tuple[str, _Labelsets, Snapshot]]]] = {}
        live: set[JobKey] = set()
        for snapshot in snapshots:
            key = (snapshot.collector, snapshot.target)
            live.add(key)
            job = self._jobs.get(key)
            if job is None or job.snapshot is not snapshot:
                job = self._jobs[key] = self._update(job, snapshot)
            for name, (spec, lines, labelsets) in job.chunks.items():
                entry = families.get(name)
                if entry is None:
                    families[name] = (spec, [(lines, labelsets, snapshot)])
                else:
                    entry[1].append((lines, labelsets, snapshot))
        for key in [k for k in self._jobs if k not in live]:
            del self._jobs[key]
        if len(self._label_text) > self.LABEL_CACHE_LIMIT:
            self._label_text.clear()
        out: list[str] = []
        for name, (spec, parts) in families.items():
            out.append(self._header(spec, openmetrics))
            if len(parts) == 1:
                out.append(parts[0][0])
                continue
            seen: _Labelsets = set()
            for lines, labelsets, snapshot in parts:
                if seen.isdisjoint(labelsets):
                    out.append(lines)
                    seen |= labelsets
                else:  # the same series from two snapshots: the first one wins
                    out.append(self._unseen(snapshot.samples, name, seen))
        return "".join(out)

    def _header(self, spec: MetricSpec, openmetrics: bool) -> str:
        header = self._headers.get((spec, openmetrics))
        if header is None:
            header = openmetrics_header(spec) if openmetrics else text_header(spec)
            self._headers[(spec, openmetrics)] = header
        return header

    def _update(self, job: _JobText | None, snapshot: Snapshot) -> _JobText:
        samples = snapshot.samples
        lines: list[str] | None = None
        if job is not None and len(job.snapshot.samples) == len(samples):
            old = job.snapshot.samples
            # positions whose Sample object is new (C loops: map, compress)
            fresh = map(operator.is_not, samples, old)
            changed = list(itertools.compress(itertools.count(), fresh))
            # the same series in the same order: the grouping holds, new values only
            if all(_same_series(samples[i], old[i]) for i in changed):
                layout = job.layout
                lines = job.lines.copy()
                for i in changed:
                    lines[i] = self._line(samples[i])
        if lines is None:
            layout = _layout(list(map(_spec_of, samples)), list(map(_values_of, samples)))
            known: dict[int, str] = {}
            if job is not None:  # samples handed back again keep their lines
                known = dict(zip(map(id, job.snapshot.samples), job.lines, strict=True))
            lines = [known.get(id(sample)) or self._line(sample) for sample in samples]
        chunks: dict[str, _Chunk] = {}
        for name, (spec, positions, labelsets) in layout.items():
            if len(positions) == 1:
                text = lines[positions[0]]
            else:
                text = "".join(operator.itemgetter(*positions)(lines))
            chunks[name] = (spec, text, labelsets)
        return _JobText(snapshot, layout, lines, chunks)

    def _unseen(self, samples: Iterable[Sample], name: str, seen: _Labelsets) -> str:
        """The lines of family ``name`` whose series are not in ``seen`` (then added)."""
        out = []
        for sample in samples:
            if sample.spec.name == name and sample.label_values not in seen:
                seen.add(sample.label_values)
                out.append(self._line(sample))
        return "".join(out)

    def _line(self, sample: Sample) -> str:
        spec, values = sample.spec, sample.label_values
        labels = self._label_text.get((spec.name, values))
        if labels is None:
            labels = self._label_text[(spec.name, values)] = self._labels(spec, values)
        if spec.kind is MetricKind.INFO:
            return f"{spec.name}{labels} 1.0\n"
        return f"{spec.name}{labels} {go_float(sample.value)}\n"

    def _labels(self, spec: MetricSpec, values: tuple[str, ...]) -> str:
        order = self._label_order.get(spec)
        if order is None:
            names = spec.label_names
            order = self._label_order[spec] = tuple(
                sorted(((i, n) for i, n in enumerate(names)), key=lambda pair: pair[1])
            )
        return "{" + ",".join(f'{n}="{escape_label(values[i])}"' for i, n in order) + "}"


def _same_series(new: Sample, old: Sample) -> bool:
    return (new.spec is old.spec or new.spec == old.spec) and new.label_values == old.label_values


def _layout(specs: list[MetricSpec], values: list[tuple[str, ...]]) -> _Layout:
    """Groups sample positions by family in order of appearance; a duplicate series
    (same family and label values) keeps its first sample only."""
    grouped: dict[str, tuple[MetricSpec, list[int], _Labelsets]] = {}
    for i, (spec, labelvalues) in enumerate(zip(specs, values, strict=True)):
        entry = grouped.get(spec.name)
        if entry is None:
            entry = grouped[spec.name] = (spec, [], set())
        if labelvalues in entry[2]:
            continue
        entry[2].add(labelvalues)
        entry[1].append(i)
    return {name: (spec, tuple(pos), sets) for name, (spec, pos, sets) in grouped.items()}

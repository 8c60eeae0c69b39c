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

import math
import threading
from collections.abc import Iterable, Sequence

from prometheus_client.utils import floatToGoString

from monitor.snapshot import MetricKind, MetricSpec, Sample, Snapshot
from monitor.store import JobKey

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


_Chunk = tuple[MetricSpec, str, set[tuple[str, ...]]]
"""One family's part of one snapshot: its spec, sample lines, label value tuples."""


class StoreText:
    """Renders snapshots' samples in either format, rebuilding only changed snapshots."""

    LABEL_CACHE_LIMIT = 500_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: dict[JobKey, tuple[Snapshot, dict[str, _Chunk], dict[int, str]]] = {}
        """Per job: its last snapshot (kept alive, so the ids below stay unique), that
        snapshot's text per family, and each sample's line by ``id(sample)``: a collector
        that hands back the same immutable Sample objects gets their lines for free."""
        self._label_order: dict[MetricSpec, tuple[tuple[int, str], ...]] = {}
        self._label_text: dict[tuple[str, tuple[str, ...]], str] = {}
        self._headers: dict[tuple[MetricSpec, bool], str] = {}

    def render(self, snapshots: Sequence[Snapshot], openmetrics: bool = False) -> str:
        """The samples of ``snapshots`` (the store's live ones, in order) as text."""
        with self._lock:
            return self._render(snapshots, openmetrics)

    def _render(self, snapshots: Sequence[Snapshot], openmetrics: bool) -> str:
        families: dict[str, tuple[MetricSpec, list[tuple[str, set[tuple[str, ...]], Snapshot]]]]
        families = {}
        live: set[JobKey] = set()
        for snapshot in snapshots:
            key = (snapshot.collector, snapshot.target)
            live.add(key)
            cached = self._chunks.get(key)
            if cached is None or cached[0] is not snapshot:
                lines_by_id: dict[int, str] = {}
                previous = cached[2] if cached is not None else {}
                chunks = self._build(snapshot.samples, previous=previous, lines_by_id=lines_by_id)
                cached = self._chunks[key] = (snapshot, chunks, lines_by_id)
            for name, (spec, lines, labelsets) in cached[1].items():
                entry = families.get(name)
                if entry is None:
                    families[name] = (spec, [(lines, labelsets, snapshot)])
                else:
                    entry[1].append((lines, labelsets, snapshot))
        for key in [k for k in self._chunks if k not in live]:
            del self._chunks[key]
        if len(self._label_text) > self.LABEL_CACHE_LIMIT:
            self._label_text.clear()
        out: list[str] = []
        for name, (spec, parts) in families.items():
            out.append(self._header(spec, openmetrics))
            if len(parts) == 1:
                out.append(parts[0][0])
                continue
            seen: set[tuple[str, ...]] = set()
            for lines, labelsets, snapshot in parts:
                if seen.isdisjoint(labelsets):
                    out.append(lines)
                    seen |= labelsets
                else:  # the same series from two snapshots: the first one wins
                    samples = [s for s in snapshot.samples if s.spec.name == name]
                    out.append(self._build(samples, seen)[name][1])
        return "".join(out)

    def _header(self, spec: MetricSpec, openmetrics: bool) -> str:
        header = self._headers.get((spec, openmetrics))
        if header is None:
            header = openmetrics_header(spec) if openmetrics else text_header(spec)
            self._headers[(spec, openmetrics)] = header
        return header

    def _build(
        self,
        samples: Iterable[Sample],
        seen: set[tuple[str, ...]] | None = None,
        *,
        previous: dict[int, str] | None = None,
        lines_by_id: dict[int, str] | None = None,
    ) -> dict[str, _Chunk]:
        chunks: dict[str, tuple[MetricSpec, list[str], set[tuple[str, ...]]]] = {}
        previous = previous or {}
        for sample in samples:
            spec = sample.spec
            values = sample.label_values
            chunk = chunks.get(spec.name)
            if chunk is None:
                chunk = chunks[spec.name] = (spec, [], seen if seen is not None else set())
            if values in chunk[2]:
                continue
            chunk[2].add(values)
            ident = id(sample)
            line = previous.get(ident)
            if line is None:
                line = self._line(sample)
            if lines_by_id is not None:
                lines_by_id[ident] = line
            chunk[1].append(line)
        return {name: (s, "".join(lines), sets) for name, (s, lines, sets) in chunks.items()}

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

"""prometheus_client metric families as exposition text, without its generators.

The daemon's self-metrics and the components' collectors (alerting, loop lag, RUM, log
drains, remote write) are prometheus_client families, rendered on every render of
``/metrics``. prometheus_client's ``generate_latest`` (both formats) spends most of its
time per family on escaping schemes and native-histogram checks: a few dozen samples
cost about a millisecond, the largest part of a scrape that races a fresh collection.

:func:`render_families` writes the same bytes as prometheus_client's text 0.0.4 and
OpenMetrics ``generate_latest`` (without ``# EOF``) for the families such collectors
produce: legacy names, float values, no timestamps, exemplars or native histograms. Any
other family is handed to prometheus_client whole, so the output never departs from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from monitor.kernel.store_text import escape_label, go_float

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").fullmatch
"""Names both generators leave as they are (a ``:`` is rewritten in OpenMetrics
sample names, so names with one go to prometheus_client)."""
_TEXT_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram",
               "summary": "summary", "info": "gauge", "stateset": "gauge",
               "gaugehistogram": "histogram", "unknown": "untyped"}  # fmt: skip
_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")
"""Sample suffixes the text format moves to a gauge family of their own."""
_EOF = "# EOF\n"


CACHE_LIMIT = 100_000
"""Label sets and names remembered between renders (the components' series are few and
stable); past this many the caches start again."""
_label_texts: dict[tuple[tuple[str, str], ...], str | None] = {}
"""A sample's labels, in their own order, as sorted ``{k="v",...}`` text, or ``None``
when a label name would be rewritten (handed to prometheus_client)."""
_plain_names: dict[str, bool] = {}


def render_families(families: Iterable[Metric], openmetrics: bool = False) -> str:
    """``families`` in the text format 0.0.4, or OpenMetrics without the ``# EOF`` line."""
    if len(_label_texts) > CACHE_LIMIT or len(_plain_names) > CACHE_LIMIT:
        _label_texts.clear()
        _plain_names.clear()
    out: list[str] = []
    for family in families:
        lines = _lines(family) if _plain_name(family.name) else None
        if lines is None:
            out.append(_by_prometheus_client(family, openmetrics))
        elif openmetrics:
            _openmetrics_family(family, lines, out)
        else:
            _text_family(family, lines, out)
    return "".join(out)


def _plain_name(name: str) -> bool:
    plain = _plain_names.get(name)
    if plain is None:
        plain = _plain_names[name] = _NAME(name) is not None
    return plain


def _labels(labels: dict[str, str]) -> str | None:
    if not labels:
        return ""
    key = tuple(labels.items())
    try:
        return _label_texts[key]
    except KeyError:
        pass
    items = sorted(key)
    text: str | None = None
    if all(_plain_name(name) for name, _ in items):
        text = "{" + ",".join([f'{name}="{escape_label(value)}"' for name, value in items]) + "}"
    _label_texts[key] = text
    return text


def _lines(family: Metric) -> list[str] | None:
    """Each sample's line, or ``None`` if one needs prometheus_client (a timestamp, an
    exemplar, a native histogram, a name either generator would rewrite)."""
    lines = []
    for sample in family.samples:
        labels = _labels(sample.labels)
        if (
            labels is None
            or sample.timestamp is not None
            or sample.exemplar is not None
            or sample.native_histogram is not None
            or not isinstance(sample.value, float | int)
            or not _plain_name(sample.name)
        ):
            return None
        lines.append(f"{sample.name}{labels} {go_float(float(sample.value))}\n")
    return lines


def _text_family(family: Metric, lines: list[str], out: list[str]) -> None:
    name, kind = family.name, family.type
    exposed = name + "_total" if kind == "counter" else name + "_info" if kind == "info" else name
    help_text = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
    out.append(f"# HELP {exposed} {help_text}\n# TYPE {exposed} {_TEXT_TYPES[kind]}\n")
    moved: dict[str, list[str]] = {}
    for sample, line in zip(family.samples, lines, strict=True):
        suffix = sample.name[len(name) :] if sample.name.startswith(name) else ""
        if suffix in _OPENMETRICS_ONLY:
            moved.setdefault(suffix, []).append(line)
        else:
            out.append(line)
    for suffix, moved_lines in sorted(moved.items()):
        out.append(f"# HELP {name}{suffix} {help_text}\n# TYPE {name}{suffix} gauge\n")
        out.extend(moved_lines)


def _openmetrics_family(family: Metric, lines: list[str], out: list[str]) -> None:
    name = family.name
    help_text = family.documentation.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    out.append(f"# HELP {name} {help_text}\n# TYPE {name} {family.type}\n")
    if family.unit:
        out.append(f"# UNIT {name} {family.unit}\n")
    out.extend(lines)


class _One(Collector):
    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> Iterator[Metric]:
        yield self._family


def _by_prometheus_client(family: Metric, openmetrics: bool) -> str:
    if openmetrics:
        body: bytes = generate_openmetrics(_One(family))  # type: ignore[no-untyped-call]
        return body.decode().removesuffix(_EOF)
    return generate_text(_One(family)).decode()

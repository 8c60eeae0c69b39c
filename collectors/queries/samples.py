"""Turn a query's rows into samples, one :class:`MetricReader` per configured metric.

- A NULL value skips that sample (``reason="null"``); a value that is no number
  (``not_numeric``) likewise. Times become Unix seconds and intervals seconds, so
  ``min(created_at)`` or ``now() - min(created_at)`` are values as they stand.
- A label set seen twice in one result keeps its first row (``duplicate``); past
  ``max_series`` distinct label sets the rest are dropped (``max_series``).
- A counter keeps a running total per label set: a value lower than the last one is a
  reset, and the new value is the increase since it (the exported ``*_total`` only grows).
- A histogram's bucket columns must be cumulative (each <= the next, the last <= count);
  a row that is not is skipped (``not_cumulative``).

The snapshot store has no histogram type: a histogram is exported as its
``_bucket{le}``, ``_count`` and ``_sum`` series, which PromQL reads as usual.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from collectors.postgres.counters import RunningTotals
from collectors.queries.config import QueryMetric
from monitor.kernel.snapshot import MetricKind, MetricSpec, Sample, counter, gauge, info

Row = tuple[Any, ...]
Drops = Counter[tuple[str, str]]
"""(metric, reason) -> samples dropped in one run."""


class MissingColumns(Exception):
    """The result lacks a column a metric reads (a typo, or the SQL changed)."""


class NotNumeric(Exception):
    pass


def number(value: Any) -> float:
    """A value column as a float; raises :class:`NotNumeric`."""
    if isinstance(value, bool | int | float | Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return float(value.timestamp())
    if isinstance(value, dt.timedelta):
        return float(value.total_seconds())
    raise NotNumeric(type(value).__name__)


def label_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _help(metric: QueryMetric, query: str) -> str:
    return metric.help or f"Custom metric of query {query}"


class MetricReader:
    """Reads one configured metric out of every row of a result."""

    def __init__(self, metric: QueryMetric, query: str) -> None:
        self.metric = metric
        help_text = _help(metric, query)
        labels = metric.labels
        self._specs: tuple[MetricSpec, ...]
        if metric.type == "counter":
            self._specs = (counter(metric.name, help_text, *labels),)
        elif metric.type == "info":
            self._specs = (info(metric.name, help_text, *labels),)
        elif metric.type == "histogram":
            self._specs = (
                gauge(f"{metric.name}_bucket", help_text, *labels, "le"),
                gauge(f"{metric.name}_count", f"{help_text} (count)", *labels),
                gauge(f"{metric.name}_sum", f"{help_text} (sum)", *labels),
            )
        else:
            self._specs = (gauge(metric.name, help_text, *labels),)
        self._le = tuple(repr(float(b.le)) for b in metric.buckets)
        self._totals: RunningTotals[tuple[str, ...]] = RunningTotals()

    @property
    def spec(self) -> MetricSpec:
        return self._specs[0]

    def read(
        self, target: str, columns: Sequence[str], rows: Sequence[Row], drops: Drops
    ) -> list[Sample]:
        index = {name: i for i, name in enumerate(columns)}
        missing = [c for c in self.metric.columns() if c not in index]
        if missing:
            raise MissingColumns(
                f"metric {self.metric.name}: column(s) {', '.join(missing)} not in the "
                f"result (columns: {', '.join(columns)})"
            )
        label_at = [index[c] for c in self.metric.labels]
        seen: set[tuple[str, ...]] = set()
        out: list[Sample] = []
        name = self.metric.name
        for row in rows:
            labels = tuple(label_text(row[i]) for i in label_at)
            if labels in seen:
                drops[(name, "duplicate")] += 1
                continue
            if len(seen) >= self.metric.max_series:
                drops[(name, "max_series")] += 1
                continue
            try:
                made = self._samples(target, labels, row, index)
            except NotNumeric:
                drops[(name, "not_numeric")] += 1
                continue
            if isinstance(made, str):
                drops[(name, made)] += 1
                continue
            seen.add(labels)
            out.extend(made)
        if self.metric.type == "counter":
            self._totals.retain(seen)
        return out

    def _samples(
        self, target: str, labels: tuple[str, ...], row: Row, index: dict[str, int]
    ) -> list[Sample] | str:
        """The samples of one row, or the reason it is skipped."""
        metric, spec = self.metric, self._specs[0]
        if spec.kind is MetricKind.INFO:
            return [spec(1, *labels, target=target)]
        if metric.type == "histogram":
            return self._histogram(target, labels, row, index)
        assert metric.value is not None
        raw = row[index[metric.value]]
        if raw is None:
            return "null"
        value = number(raw)
        if spec.kind is MetricKind.COUNTER:
            value = self._totals.update(labels, (value,))[0]
        return [spec(value, *labels, target=target)]

    def _histogram(
        self, target: str, labels: tuple[str, ...], row: Row, index: dict[str, int]
    ) -> list[Sample] | str:
        metric = self.metric
        assert metric.count is not None
        raw = [row[index[b.column]] for b in metric.buckets] + [row[index[metric.count]]]
        total = row[index[metric.sum]] if metric.sum is not None else 0
        if any(v is None for v in raw) or total is None:
            return "null"
        counts = [number(v) for v in raw]
        if any(a > b for a, b in itertools.pairwise(counts)):
            return "not_cumulative"
        bucket, count, sum_ = self._specs
        out = [
            bucket(c, *labels, le, target=target) for c, le in zip(counts, self._le, strict=False)
        ]
        out.append(bucket(counts[-1], *labels, "+Inf", target=target))
        out.append(count(counts[-1], *labels, target=target))
        if metric.sum is not None:
            out.append(sum_(number(total), *labels, target=target))
        return out

"""Configuration of custom SQL queries exported as metrics (``queries:``).

::

    queries:
      - name: signups
        targets: [primary]              # postgres target names
        interval: 60s
        timeout: 10s
        params: {window: "${SIGNUP_WINDOW:-1 hour}"}   # bind parameters, never SQL text
        sql: >-
          SELECT plan, count(*) AS n FROM users
          WHERE created_at > now() - %(window)s::interval GROUP BY plan
        metrics:
          - {name: app_signups, help: "Signups in the window", labels: [plan], value: n}

The ``sql`` text is taken verbatim: the loader does not expand ``${VAR}`` in it, so
nothing from the environment is ever formatted into SQL; values come in as ``params``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from monitor.kernel.config.types import Duration, Model, Name

MetricType = Literal["gauge", "counter", "histogram", "info"]

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_PREFIXES = ("monitor_", "__")
"""``monitor_`` names are the daemon's own; ``__`` is Prometheus'."""
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _metric_name(value: str) -> str:
    if not _METRIC_NAME.match(value):
        raise ValueError(f"invalid metric name {value!r}: use [a-zA-Z_:][a-zA-Z0-9_:]*")
    if value.startswith(RESERVED_PREFIXES):
        raise ValueError(f"metric name {value!r} uses a reserved prefix {RESERVED_PREFIXES}")
    return value


def _column(value: str) -> str:
    if not value:
        raise ValueError("a column name must not be empty")
    return value


MetricName = Annotated[str, AfterValidator(_metric_name)]
Column = Annotated[str, AfterValidator(_column)]


class Bucket(Model):
    """One histogram bucket: the column holding the cumulative count of values <= ``le``."""

    le: float
    column: Column

    @field_validator("le")
    @classmethod
    def _finite(cls, value: float) -> float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("le must be finite: the +Inf bucket is the `count` column")
        return value


class QueryMetric(Model):
    """One metric read from the query's rows: one sample per row (label set).

    - ``gauge``: ``value`` as is.
    - ``counter``: ``value`` is a cumulative count; a decrease is a reset, the exported
      ``*_total`` keeps growing. The name must end in ``_total``.
    - ``histogram``: ``buckets`` columns hold cumulative counts per upper bound, ``count``
      the total (the +Inf bucket), ``sum`` optionally the sum of the values; exported as
      ``<name>_bucket{le}``, ``<name>_count`` and ``<name>_sum``.
    - ``info``: one ``<name>{labels} 1`` per row; the name must end in ``_info``.

    ``labels`` are column names, which become label names. A NULL in a value column skips
    that sample; a NULL label value exports as the empty string.
    """

    name: MetricName
    type: MetricType = "gauge"
    help: str = ""
    labels: tuple[Column, ...] = ()
    value: Column | None = None
    buckets: tuple[Bucket, ...] = ()
    count: Column | None = None
    sum: Column | None = None
    max_series: int = Field(default=1_000, ge=1, le=100_000)
    """Distinct label sets exported per run; the rest are counted as dropped."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        kind = self.type
        if kind in ("gauge", "counter") and self.value is None:
            problems.append(f"a {kind} needs a `value` column")
        if kind in ("info", "histogram") and self.value is not None:
            problems.append(f"a {kind} takes no `value` column")
        if kind == "histogram":
            if not self.buckets:
                problems.append("a histogram needs `buckets` ({le, column} pairs)")
            if self.count is None:
                problems.append("a histogram needs a `count` column (the +Inf bucket)")
            bounds = [b.le for b in self.buckets]
            if bounds != sorted(set(bounds)):
                problems.append("histogram buckets must have strictly increasing `le`")
            if self.name.endswith((*HISTOGRAM_SUFFIXES, "_total")):
                problems.append("a histogram name must not end in _bucket, _sum, _count, _total")
            if "le" in self.labels:
                problems.append("`le` is the histogram's own label")
        elif self.buckets or self.count is not None or self.sum is not None:
            problems.append("`buckets`, `count` and `sum` are for histograms only")
        if kind == "counter" and not self.name.endswith("_total"):
            problems.append(f"a counter name must end in _total (e.g. {self.name}_total)")
        if kind != "counter" and self.name.endswith("_total"):
            problems.append("only counter names end in _total")
        if kind == "info" and not self.name.endswith("_info"):
            problems.append(f"an info metric name must end in _info (e.g. {self.name}_info)")
        for label in self.labels:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                problems.append(f"label column {label!r} is not a valid label name")
            elif label == "target":
                problems.append("`target` is set by the daemon (the target's name)")
        if len(set(self.labels)) != len(self.labels):
            problems.append("label columns must be distinct")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def columns(self) -> tuple[str, ...]:
        """Every column this metric reads."""
        value_columns = [self.value, self.count, self.sum, *(b.column for b in self.buckets)]
        return (*self.labels, *(c for c in value_columns if c is not None))

    def series_names(self) -> tuple[str, ...]:
        """The exported metric names (a histogram exports three)."""
        if self.type == "histogram":
            names = [f"{self.name}_bucket", f"{self.name}_count"]
            if self.sum is not None:
                names.append(f"{self.name}_sum")
            return tuple(names)
        return (self.name,)


ParamValue = str | int | float | bool


class QueryConfig(Model):
    """One custom query: run on each target on its own schedule and connection budget."""

    name: Name
    sql: str = Field(min_length=1)
    """A single SELECT (or VALUES); runs in a READ ONLY transaction. With ``params``,
    placeholders are ``%(name)s`` and a literal ``%`` is written ``%%``."""
    targets: tuple[Name, ...] = Field(min_length=1)
    """PostgreSQL target names (``targets.postgres[].name``)."""
    interval: Duration | None = None
    """Defaults to the global ``interval``."""
    timeout: Duration | None = None
    """The query's ``statement_timeout``; defaults to 80% of the interval, at most 10 s."""
    lock_timeout: Duration | None = None
    """Defaults to the smaller of 1 s and ``timeout``."""
    params: dict[str, ParamValue] = Field(default_factory=dict)
    """Bind parameters (``%(name)s`` in the SQL); use ``${VAR}`` here for the environment."""
    max_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    """Rows read per run; the rest are counted (``monitor_query_rows_dropped_total``)."""
    metrics: tuple[QueryMetric, ...] = Field(min_length=1)

    @field_validator("sql")
    @classmethod
    def _sql(cls, value: str) -> str:
        if "${" in value:
            raise ValueError(
                "${VAR} is not expanded in sql (nothing from the environment is formatted "
                "into SQL): declare it under `params` and write %(name)s"
            )
        text = value.strip().rstrip(";").rstrip()
        if not text:
            raise ValueError("sql is empty")
        return text

    @field_validator("params")
    @classmethod
    def _param_names(cls, value: dict[str, ParamValue]) -> dict[str, ParamValue]:
        for name in value:
            if not _LABEL_NAME.match(name):
                raise ValueError(f"invalid parameter name {name!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("targets must be distinct")
        if self.timeout is not None and self.interval is not None and self.timeout >= self.interval:
            raise ValueError(
                f"timeout ({self.timeout:g}s) must be shorter than interval ({self.interval:g}s)"
            )
        if (
            self.lock_timeout is not None
            and self.timeout is not None
            and self.lock_timeout > self.timeout
        ):
            raise ValueError("lock_timeout must not exceed timeout")
        return self


def _unique(queries: tuple[QueryConfig, ...]) -> tuple[QueryConfig, ...]:
    problems: list[str] = []
    names: set[str] = set()
    owner: dict[str, str] = {}
    for query in queries:
        if query.name in names:
            problems.append(f"duplicate query name {query.name!r}")
        names.add(query.name)
        for metric in query.metrics:
            for series in metric.series_names():
                other = owner.get(series)
                if other is not None:
                    problems.append(
                        f"metric {series!r} of query {query.name!r} is already made by "
                        f"query {other!r}"
                    )
                owner[series] = query.name
    if problems:
        raise ValueError("; ".join(problems))
    return queries


Queries = Annotated[tuple[QueryConfig, ...], AfterValidator(_unique)]
"""The root ``queries:`` list."""


def unknown_targets(queries: Iterable[QueryConfig], postgres_names: Iterable[str]) -> list[str]:
    """One problem per query target that names no configured PostgreSQL target."""
    known = set(postgres_names)
    return [
        f"queries[{i}] ({q.name}): unknown postgres target {t!r}"
        for i, q in enumerate(queries)
        for t in q.targets
        if t not in known
    ]

"""Compiled alert rules: what each kind of rule observes in a :class:`SeriesView`.

A rule turns the view into *observations*, one per label set, each saying whether the
rule's condition holds for it now. The evaluator turns observations into state
(pending, firing, resolved); rules know nothing of state beyond hysteresis.

Kinds:

* ``threshold``: every series of ``metric`` matching the label matchers, compared with
  ``threshold``; once pending or firing, the condition holds until the value passes
  ``clear`` (so a value hovering on the line neither resets ``for`` nor flaps).
* ``nodata``: fires when no series of ``metric`` matching the equality/regex matchers
  comes from a healthy collector (absent, or its collector failing).
* ``regression``: a pg_stat_statements query's mean execution time over ``window``
  against its own mean over the ``baseline`` before it (see :mod:`alerts.rules.regression`).
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alerts import templates
from alerts.instance import AlertInstance, Clock, JobKey, State
from alerts.labels import Labels, Matcher, PositionalMatcher, freeze, instance_key
from alerts.rules.regression import History, Point, RegressionSettings, assess, record
from alerts.series import JobState, SeriesView

IDENTITY_CACHE_MAX = 100_000
"""Per rule and label set: series identities kept between cycles."""

COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True, slots=True)
class Observation:
    labels: Labels
    value: float | None
    active: bool
    job: JobKey | None
    threshold: float | None = None


@dataclass(slots=True)
class Observed:
    """A rule's output for one cycle: observations and, for regression, new history."""

    observations: dict[str, Observation]
    history: Mapping[Labels, History] | None = None
    appended: list[tuple[Labels, Point]] = field(default_factory=list)
    reset: list[Labels] = field(default_factory=list)
    dropped: list[tuple[Labels, Point]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Guard:
    """``when``: the rule applies to a target only while this condition holds on it."""

    metric: str
    matcher: Matcher
    op: str
    threshold: float

    def targets(self, view: SeriesView) -> set[str]:
        compare = COMPARE[self.op]
        allowed: set[str] = set()
        for _, sample in view.samples(self.metric):
            labels = sample.labels
            if self.matcher.matches(labels) and compare(sample.value, self.threshold):
                allowed.add(labels["target"])
        return allowed


@dataclass(frozen=True, kw_only=True)
class Rule(ABC):
    name: str
    kind: str
    severity: str
    for_: float = 0.0
    keep_firing_for: float = 0.0
    summary: str = ""
    description: str = ""
    runbook_url: str | None = None
    dashboard_url: str | None = None
    static_labels: Labels = ()
    builtin: bool = False
    metric: str = ""
    matcher: Matcher = field(default_factory=Matcher)

    @abstractmethod
    def observe(
        self,
        view: SeriesView,
        current: Mapping[str, AlertInstance],
        history: Mapping[Labels, History] | None,
        now: Clock,
    ) -> Observed: ...

    def context(self, instance: AlertInstance, labels: Mapping[str, str]) -> dict[str, Any]:
        """Template variables for ``instance`` (``labels``: its full alert labels)."""
        return templates.context(
            rule=self.name,
            severity=instance.severity,
            labels=labels,
            value=instance.value,
            metric=self.metric,
            threshold=instance.threshold,
        )

    def describe(self) -> str:
        return f"{self.kind} on {self.metric}"


@dataclass(frozen=True, kw_only=True)
class ThresholdRule(Rule):
    op: str = ">"
    threshold: float = 0.0
    clear: float | None = None
    guard: Guard | None = None
    _positional: dict[tuple[str, ...], PositionalMatcher] = field(
        default_factory=dict, compare=False, repr=False
    )
    _identities: dict[tuple[str, ...], dict[tuple[str, ...], tuple[Labels, str]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def _matcher_for(self, names: tuple[str, ...]) -> PositionalMatcher | None:
        if self.matcher.empty:
            return None
        found = self._positional.get(names)
        if found is None:
            found = self._positional[names] = self.matcher.compile_for(names)
        return found

    def _identity(self, names: tuple[str, ...], values: tuple[str, ...]) -> tuple[Labels, str]:
        """(labels, instance key) of a series, cached: they are the same every cycle."""
        cache = self._identities.setdefault(names, {})
        found = cache.get(values)
        if found is None:
            if len(cache) > IDENTITY_CACHE_MAX:
                cache.clear()
            labels = freeze(dict(zip(names, values, strict=True)))
            found = cache[values] = (labels, instance_key(self.name, labels))
        return found

    @staticmethod
    def _watched(current: list[dict[str, str]], names: tuple[str, ...]) -> set[tuple[str, ...]]:
        """The label values (in ``names`` order) of this rule's current instances."""
        allowed = set(names)
        return {
            tuple(labels.get(n, "") for n in names)
            for labels in current
            if labels.keys() <= allowed
        }

    def still_bad(self, value: float) -> bool:
        """Hysteresis: a pending or firing instance holds until the value passes ``clear``."""
        if self.clear is None:
            return COMPARE[self.op](value, self.threshold)
        if self.op in (">", ">="):
            return value > self.clear
        return value < self.clear

    def observe(
        self,
        view: SeriesView,
        current: Mapping[str, AlertInstance],
        history: Mapping[Labels, History] | None,
        now: Clock,
    ) -> Observed:
        compare = COMPARE[self.op]
        threshold = self.threshold
        allowed = self.guard.targets(view) if self.guard is not None else None
        out: dict[str, Observation] = {}
        watch_sets: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
        current_labels = [dict(i.labels) for i in current.values()]

        def watching(names: tuple[str, ...]) -> set[tuple[str, ...]]:
            found = watch_sets.get(names)
            if found is None:
                found = watch_sets[names] = self._watched(current_labels, names)
            return found

        for chunk in view.chunks(self.metric):
            if not chunk.samples:
                continue
            if allowed is not None and chunk.job is not None and chunk.job[1] not in allowed:
                continue
            spec = chunk.samples[0].spec
            names = spec.label_names
            matcher = self._matcher_for(names)
            watched = watching(names)
            for sample in chunk.samples:
                if sample.spec is not spec:  # a collector mixing label sets: rare
                    spec = sample.spec
                    names = spec.label_names
                    matcher = self._matcher_for(names)
                    watched = watching(names)
                values = sample.label_values
                if matcher is not None and not matcher.matches(values):
                    continue
                if allowed is not None and values[0] not in allowed:
                    continue
                value = sample.value
                active = compare(value, threshold)
                if not active:
                    if values not in watched:
                        continue
                    active = self.still_bad(value)  # hysteresis, pending or firing
                labels, key = self._identity(names, values)
                out[key] = Observation(labels, value, active, chunk.job, threshold)
        return Observed(out)

    def context(self, instance: AlertInstance, labels: Mapping[str, str]) -> dict[str, Any]:
        ctx = super().context(instance, labels)
        ctx["clear"] = self.clear
        ctx["op"] = self.op
        return ctx

    def describe(self) -> str:
        clear = f", clear {self.clear:g}" if self.clear is not None else ""
        return f"{self.metric} {self.op} {self.threshold:g}{clear}"


@dataclass(frozen=True, kw_only=True)
class NoDataRule(Rule):
    def observe(
        self,
        view: SeriesView,
        current: Mapping[str, AlertInstance],
        history: Mapping[Labels, History] | None,
        now: Clock,
    ) -> Observed:
        count = 0
        for chunk in view.chunks(self.metric):
            if not chunk.ok or view.job_state(chunk.job) is not JobState.HEALTHY:
                continue
            for sample in chunk.samples:
                if self.matcher.matches(sample.labels):
                    count += 1
        labels = self.matcher.equal
        key = instance_key(self.name, labels)
        return Observed({key: Observation(labels, float(count), count == 0, None, 0.0)})

    def describe(self) -> str:
        return f"no data for {self.metric}"


SERIES_MEMO_LIMIT = 200_000
"""Statement series whose labels a regression rule remembers; past it, it starts again."""


@dataclass(frozen=True, kw_only=True)
class RegressionRule(Rule):
    settings: RegressionSettings
    _series: dict[tuple[tuple[str, ...], tuple[str, ...]], Labels | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Per statement series (label names, values): its alert labels, or None when the
    rule leaves it out (the ``other`` bucket, the matcher). Thousands of series each
    evaluation: building, matching and sorting their labels was half the rule's time."""

    def observe(
        self,
        view: SeriesView,
        current: Mapping[str, AlertInstance],
        history: Mapping[Labels, History] | None,
        now: Clock,
    ) -> Observed:
        s = self.settings
        calls: dict[tuple[str, ...], tuple[float, JobKey | None, tuple[str, ...]]] = {}
        for chunk in view.chunks(s.calls_metric):
            for sample in chunk.samples:
                calls[sample.label_values] = (sample.value, chunk.job, sample.spec.label_names)
        previous = history or {}
        new_history: dict[Labels, History] = {}
        observed = Observed({}, new_history)
        seen: set[Labels] = set()
        series = self._series
        if len(series) > SERIES_MEMO_LIMIT:
            series.clear()
        for chunk in view.chunks(s.time_metric):
            for sample in chunk.samples:
                entry = calls.get(sample.label_values)
                if entry is None:
                    continue
                count, job, names = entry
                try:
                    labels = series[names, sample.label_values]
                except KeyError:
                    labels = series[names, sample.label_values] = self._labels(
                        names, sample.label_values
                    )
                if labels is None:
                    continue
                seen.add(labels)
                point = Point(now.monotonic, now.wall, count, sample.value)
                points, appended, was_reset, dropped = record(previous.get(labels, ()), point, s)
                new_history[labels] = points
                if was_reset:
                    observed.reset.append(labels)
                if appended:
                    observed.appended.append((labels, point))
                if dropped:
                    observed.dropped.extend((labels, old) for old in dropped)
                # the key only when the rule has instances: usually none, and the
                # statements are thousands
                key = instance_key(self.name, labels) if current else ""
                instance = current.get(key) if current else None
                firing = instance is not None and instance.state is State.FIRING
                verdict = assess(points, point, s, firing=firing)
                if verdict is None or not (verdict.active or instance is not None):
                    continue  # nothing starts, and nothing is pending or firing to end
                observed.observations[key or instance_key(self.name, labels)] = Observation(
                    labels, verdict.recent_mean, verdict.active, job, verdict.threshold
                )
        horizon = now.monotonic - s.horizon
        for labels, points in previous.items():
            if labels not in seen and points and points[-1].monotonic >= horizon:
                new_history[labels] = points  # collector down or query evicted: keep a while
        return observed

    def _labels(self, names: tuple[str, ...], values: tuple[str, ...]) -> Labels | None:
        label_map = dict(zip(names, values, strict=True))
        if label_map.get("queryid") == "other" or not self.matcher.matches(label_map):
            return None
        return freeze(label_map)

    def context(self, instance: AlertInstance, labels: Mapping[str, str]) -> dict[str, Any]:
        ctx = super().context(instance, labels)
        threshold = instance.threshold
        ctx["baseline"] = threshold / self.settings.factor if threshold is not None else None
        ctx["factor"] = self.settings.factor
        return ctx

    def describe(self) -> str:
        s = self.settings
        return f"mean time of {s.time_metric} over {s.window:g}s > {s.factor:g}x its baseline"

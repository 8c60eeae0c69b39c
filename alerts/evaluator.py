"""The rule evaluator: a pure function of (series view, previous state, now).

Per alert instance (rule + label set)::

    inactive --condition--> pending --held for `for`--> firing --cleared--> resolved
                  pending --condition gone--> inactive (a blip: never notified)

* ``for`` is measured on the monotonic clock, with the collector's scheduling jitter as
  slack, so an alert fires at the first evaluation where it has held long enough.
* A pending or firing instance whose value is back inside the threshold but not past
  ``clear`` holds its state (value hysteresis); with ``keep_firing_for`` a firing one
  also stays firing until the condition has been false that long (time hysteresis).
* A series that is absent while its collector is failing (down, not run yet, stale)
  keeps its state: a dead collector is never mistaken for recovery. Absent while the
  collector is healthy (or no longer configured) counts as the condition being false.
* Instances of a rule that no longer exists (removed or disabled) resolve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from alerts.instance import AlertInstance, Clock, State, Transition
from alerts.labels import Labels
from alerts.rules.kinds import Observation, Rule
from alerts.rules.regression import History, Point
from alerts.series import JobState, SeriesView

EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class EvalState:
    instances: Mapping[str, AlertInstance] = field(default_factory=dict)
    """Pending and firing instances by key."""
    history: Mapping[str, Mapping[Labels, History]] = field(default_factory=dict)
    """Regression history per rule and query."""


@dataclass(frozen=True, slots=True)
class HistoryChange:
    rule: str
    labels: Labels
    point: Point | None
    """The point added (or dropped, with ``dropped``), or None when the query's history
    restarted (counter reset)."""
    dropped: bool = False


@dataclass(frozen=True, slots=True)
class EvalResult:
    state: EvalState
    transitions: tuple[Transition, ...]
    history_changes: tuple[HistoryChange, ...] = ()


def evaluate(
    rules: Sequence[Rule], view: SeriesView, previous: EvalState, now: Clock
) -> EvalResult:
    by_rule: dict[str, dict[str, AlertInstance]] = {}
    for key, instance in previous.instances.items():
        by_rule.setdefault(instance.rule, {})[key] = instance
    instances: dict[str, AlertInstance] = {}
    transitions: list[Transition] = []
    history: dict[str, Mapping[Labels, History]] = {}
    changes: list[HistoryChange] = []
    for rule in rules:
        current = by_rule.pop(rule.name, {})
        observed = rule.observe(view, current, previous.history.get(rule.name), now)
        if observed.history is not None:
            history[rule.name] = observed.history
            changes.extend(HistoryChange(rule.name, labels, None) for labels in observed.reset)
            changes.extend(HistoryChange(rule.name, lbl, pt) for lbl, pt in observed.appended)
            changes.extend(HistoryChange(rule.name, lbl, pt, True) for lbl, pt in observed.dropped)
        observations = observed.observations
        for key in observations.keys() | current.keys():
            after, transition = _step(rule, key, current.get(key), observations.get(key), view, now)
            if after is not None and after.state is not State.RESOLVED:
                instances[after.key] = after
            if transition is not None:
                transitions.append(transition)
    for orphans in by_rule.values():  # the rule is gone: resolve what it left behind
        for instance in orphans.values():
            transitions.append(_end(instance, now))
    return EvalResult(EvalState(instances, history), tuple(transitions), tuple(changes))


def _end(instance: AlertInstance, now: Clock) -> Transition:
    if instance.state is State.PENDING:
        return Transition(instance, State.PENDING, None)
    resolved = replace(instance, state=State.RESOLVED, resolved_at=now.wall)
    return Transition(resolved, State.FIRING, State.RESOLVED)


def _step(
    rule: Rule,
    key: str,
    instance: AlertInstance | None,
    observation: Observation | None,
    view: SeriesView,
    now: Clock,
) -> tuple[AlertInstance | None, Transition | None]:
    if observation is None:
        if instance is None:
            return None, None
        if view.job_state(instance.job) is JobState.FAILING:
            return instance, None  # no data from a failing collector: keep the state
        active, value, job, threshold = False, instance.value, instance.job, instance.threshold
    else:
        active, value, job = observation.active, observation.value, observation.job
        threshold = observation.threshold

    if active:
        if instance is None:
            instance = AlertInstance(
                key=key,
                rule=rule.name,
                labels=observation.labels if observation else (),
                state=State.PENDING,
                severity=rule.severity,
                value=value,
                threshold=threshold,
                active_since=now.monotonic,
                active_at=now.wall,
                last_true=now.monotonic,
                job=job,
            )
            if rule.for_ <= view.tolerance(job) + EPSILON:
                fired = replace(instance, state=State.FIRING, fired_at=now.wall)
                return fired, Transition(fired, None, State.FIRING)
            return instance, Transition(instance, None, State.PENDING)
        updated = replace(
            instance,
            value=value,
            threshold=threshold,
            last_true=now.monotonic,
            job=job,
            severity=rule.severity,
        )
        if instance.state is State.PENDING:
            held = now.monotonic - instance.active_since
            if held + view.tolerance(job) + EPSILON >= rule.for_:
                fired = replace(updated, state=State.FIRING, fired_at=now.wall)
                return fired, Transition(fired, State.PENDING, State.FIRING)
        return updated, None

    if instance is None:
        return None, None
    if instance.state is State.PENDING:
        return None, Transition(replace(instance, value=value), State.PENDING, None)
    updated = replace(instance, value=value, job=job, severity=rule.severity)
    if rule.keep_firing_for > 0 and now.monotonic - instance.last_true < rule.keep_firing_for:
        return updated, None
    resolved = replace(updated, state=State.RESOLVED, resolved_at=now.wall)
    return resolved, Transition(resolved, State.FIRING, State.RESOLVED)

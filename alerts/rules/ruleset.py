"""Assemble the rules in force: the built-in pack, overridden and extended by the config.

A configured rule named like a built-in one changes only the fields it sets (so
``{name: PgConnectionsHigh, threshold: 0.8}`` keeps the built-in summary and ``for``);
``enabled: false`` turns a rule off. Anything incomplete or inconsistent is reported as
a :class:`~monitor.kernel.config.loading.ConfigError` naming the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alerts.labels import Matcher, freeze
from alerts.rules.builtin import builtin_rules
from alerts.rules.config import RuleConfig
from alerts.rules.kinds import Guard, NoDataRule, RegressionRule, Rule, ThresholdRule
from alerts.rules.regression import RegressionSettings
from monitor.kernel.config.loading import ConfigError

DEFAULT_SUMMARY = {
    "threshold": "{{ rule }}: {{ metric }} is {{ value | number }} on {{ target }}",
    "nodata": "{{ rule }}: no data for {{ metric }}",
    "regression": "{{ rule }}: query {{ labels.queryid }} on {{ target }} takes "
    "{{ value | duration }} on average (baseline {{ baseline | duration }})",
}


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    disabled: tuple[str, ...]
    builtin_count: int


def merged_configs(
    configured: Sequence[RuleConfig], *, postgres_targets: int
) -> tuple[list[RuleConfig], list[str]]:
    """The effective rule configs (built-in pack first) and the problems found."""
    pack = builtin_rules(postgres_targets)
    merged: dict[str, RuleConfig] = dict(pack)
    problems: list[str] = []
    for i, rule in enumerate(configured):
        where = f"rules[{i}] ({rule.name})"
        base = pack.get(rule.name)
        if base is None:
            merged[rule.name] = rule
            continue
        update = {name: getattr(rule, name) for name in rule.model_fields_set}
        combined = base.model_copy(update=update)
        try:
            combined.check_consistency()  # each field is valid; check they fit together
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        merged[rule.name] = combined
    return list(merged.values()), problems


def build_rules(configured: Sequence[RuleConfig], *, postgres_targets: int) -> RuleSet:
    """The rules in force: the built-in pack (for this many PostgreSQL targets) with the
    ``configured`` overrides and additions; :class:`ConfigError` lists every problem."""
    configs, problems = merged_configs(configured, postgres_targets=postgres_targets)
    pack = builtin_rules(postgres_targets)
    index = {rule.name: i for i, rule in enumerate(configured)}
    rules: list[Rule] = []
    disabled: list[str] = []
    for rc in configs:
        if not rc.enabled:
            disabled.append(rc.name)
            continue
        where = f"rules[{index[rc.name]}] ({rc.name})" if rc.name in index else rc.name
        try:
            rules.append(compile_rule(rc, builtin=rc.name in pack))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise ConfigError(problems)
    return RuleSet(tuple(rules), tuple(disabled), len(pack))


def compile_rule(rc: RuleConfig, *, builtin: bool = False) -> Rule:
    kind = rc.kind or "threshold"
    common: dict[str, Any] = {
        "name": rc.name,
        "kind": kind,
        "severity": rc.severity or "warning",
        "for_": rc.for_ or 0.0,
        "keep_firing_for": rc.keep_firing_for or 0.0,
        "summary": rc.summary or DEFAULT_SUMMARY[kind],
        "description": rc.description or "",
        "runbook_url": rc.runbook_url,
        "dashboard_url": rc.dashboard_url,
        "static_labels": freeze(rc.labels),
        "builtin": builtin,
        "matcher": Matcher.build(rc.match, rc.match_re),
    }
    _refuse(rc, kind)
    if kind == "threshold":
        if rc.metric is None:
            raise ValueError(
                "a threshold rule needs `metric` (or the name of a built-in rule to override)"
            )
        if rc.threshold is None:
            raise ValueError("a threshold rule needs `threshold`")
        guard = None
        if rc.when is not None:
            guard = Guard(
                rc.when.metric, Matcher.build(rc.when.match, {}), rc.when.op, rc.when.threshold
            )
        return ThresholdRule(
            **common,
            metric=rc.metric,
            op=rc.op or ">",
            threshold=rc.threshold,
            clear=rc.clear,
            guard=guard,
        )
    if kind == "nodata":
        if rc.metric is None:
            raise ValueError("a nodata rule needs `metric`")
        if rc.for_ is None:
            raise ValueError("a nodata rule needs `for` (how long without data)")
        return NoDataRule(**common, metric=rc.metric)
    defaults = RegressionSettings()
    factor = rc.factor or defaults.factor
    clear = rc.clear if rc.clear is not None else (1 + factor) / 2
    if not 1 <= clear <= factor:
        raise ValueError(f"clear ({clear:g}) must be between 1 and factor ({factor:g})")
    settings = RegressionSettings(
        calls_metric=rc.calls_metric or defaults.calls_metric,
        time_metric=rc.time_metric or defaults.time_metric,
        window=rc.window or defaults.window,
        baseline=rc.baseline or defaults.baseline,
        factor=factor,
        clear_factor=clear,
        min_calls=rc.min_calls or defaults.min_calls,
        min_increase=rc.min_increase if rc.min_increase is not None else defaults.min_increase,
    )
    return RegressionRule(**common, metric=settings.time_metric, settings=settings)


_ONLY = {
    "threshold": ("calls_metric", "time_metric", "window", "baseline", "factor", "min_calls"),
    "nodata": ("op", "threshold", "clear", "keep_firing_for", "when", "window", "factor"),
    "regression": ("metric", "op", "threshold", "when"),
}


def _refuse(rc: RuleConfig, kind: str) -> None:
    """Fields that mean nothing for this kind of rule are errors, not silently ignored."""
    wrong: Sequence[str] = [f for f in _ONLY[kind] if getattr(rc, f) is not None]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} cannot be used in a {kind} rule")

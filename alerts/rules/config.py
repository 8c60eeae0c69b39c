"""``rules:``: one alert rule, or a partial override of a built-in rule of the same name.

Rules are validated here as far as a single rule allows (matchers, comparisons,
templates, hysteresis direction). Whether a partial rule names a built-in rule to
override is checked when the rule pack is assembled (:mod:`alerts.rules.ruleset`).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from alerts.types import (
    Comparison,
    LabelMatch,
    LabelRegexMatch,
    LinkTemplate,
    MetricName,
    OptionalDuration,
    Severity,
    Template,
)
from monitor.kernel.config.types import Duration, Model, Name


class Condition(Model):
    """A guard joined on ``target``: the rule applies only to targets where it holds."""

    metric: MetricName
    match: LabelMatch = Field(default_factory=dict)
    op: Comparison = "=="
    threshold: float


RuleKind = Literal["threshold", "nodata", "regression"]


class RuleConfig(Model):
    """One alert rule, or a partial override of a built-in rule of the same name.

    A rule given here with the name of a built-in rule replaces just the fields it sets;
    ``enabled: false`` turns the built-in off. Unset fields of a new rule take defaults.
    """

    name: Name
    kind: RuleKind | None = None
    enabled: bool = True
    metric: MetricName | None = None
    match: LabelMatch = Field(default_factory=dict)
    match_re: LabelRegexMatch = Field(default_factory=dict)
    op: Comparison | None = None
    threshold: float | None = None
    clear: float | None = None
    """Hysteresis: once firing, the alert resolves only when the value passes ``clear``."""
    for_: OptionalDuration | None = Field(default=None, alias="for")
    keep_firing_for: OptionalDuration | None = None
    when: Condition | None = None
    severity: Severity | None = None
    summary: Template | None = None
    description: Template | None = None
    runbook_url: LinkTemplate | None = None
    """A URL, or a template of one: ``https://grafana/d/pg?var-target={{ labels.target |
    urlencode }}``; an instance whose link does not render to a URL is sent without it."""
    dashboard_url: LinkTemplate | None = None
    labels: LabelMatch = Field(default_factory=dict)
    # regression rules (pg_stat_statements)
    calls_metric: MetricName | None = None
    time_metric: MetricName | None = None
    window: Duration | None = None
    baseline: Duration | None = None
    factor: float | None = Field(default=None, gt=1.0)
    min_calls: int | None = Field(default=None, ge=1)
    min_increase: OptionalDuration | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self.check_consistency()
        return self

    def check_consistency(self) -> None:
        """Raise ValueError when fields contradict each other (also after a merge)."""
        if self.clear is not None and self.op in ("==", "!="):
            raise ValueError(f"clear has no meaning with op {self.op!r}")
        if self.clear is not None and self.threshold is not None and self.op is not None:
            if self.op in (">", ">=") and self.clear > self.threshold:
                raise ValueError(
                    f"clear ({self.clear:g}) must not be above threshold ({self.threshold:g}) "
                    f"for op {self.op!r}"
                )
            if self.op in ("<", "<=") and self.clear < self.threshold:
                raise ValueError(
                    f"clear ({self.clear:g}) must not be below threshold ({self.threshold:g}) "
                    f"for op {self.op!r}"
                )
        reserved = {"alertname", "severity"} & set(self.labels)
        if reserved:
            raise ValueError(f"labels may not set {sorted(reserved)} (they are set by the rule)")


def _unique_rule_names(rules: tuple[RuleConfig, ...]) -> tuple[RuleConfig, ...]:
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ValueError(f"rule {rule.name!r} is defined twice")
        seen.add(rule.name)
    return rules


RuleList = Annotated[tuple[RuleConfig, ...], AfterValidator(_unique_rule_names)]

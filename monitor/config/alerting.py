"""Configuration of receivers, routes, silences and alert rules.

Rules are validated here as far as a single rule allows (matchers, comparisons, templates,
hysteresis direction). Whether a partial rule names a built-in rule to override is checked
when the rule pack is assembled (``alerts.rules.build_rules``), because the built-in pack
lives with the alerting engine.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator

from monitor.kernel.config.types import Duration, HttpUrl, Model, Name, SecretHttpUrl
from monitor.kernel.durations import parse_duration

Severity = Literal["critical", "warning", "info"]
PagerDutySeverity = Literal["critical", "error", "warning", "info"]
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _duration_or_zero(value: Any) -> float:
    if isinstance(value, int | float):  # bool is an int too
        raise ValueError(f"a duration needs a unit: write '{value}s' (or ms, m, h)")
    return parse_duration(value)


OptionalDuration = Annotated[float, BeforeValidator(_duration_or_zero)]
"""Like :data:`Duration` but ``0s`` is allowed (fire at once, no wait)."""


def _metric_name(value: str) -> str:
    if not _METRIC.match(value):
        raise ValueError(f"invalid metric name {value!r}")
    return value


MetricName = Annotated[str, AfterValidator(_metric_name)]


def _labels(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not _LABEL.match(name):
            raise ValueError(f"invalid label name {name!r}")
    return value


def _regexes(value: dict[str, str]) -> dict[str, str]:
    _labels(value)
    for name, pattern in value.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"match_re.{name}: invalid regular expression: {exc}") from None
    return value


LabelMatch = Annotated[dict[str, str], AfterValidator(_labels)]
LabelRegexMatch = Annotated[dict[str, str], AfterValidator(_regexes)]

_TEMPLATE_CHECK = ImmutableSandboxedEnvironment()


def _template(value: str) -> str:
    try:
        _TEMPLATE_CHECK.parse(value)
    except TemplateSyntaxError as exc:
        raise ValueError(f"invalid template (line {exc.lineno}): {exc.message}") from None
    return value


Template = Annotated[str, AfterValidator(_template)]
"""A Jinja2 template, rendered in a sandbox with ``labels``, ``value``, ``threshold``."""


# --------------------------------------------------------------------------------------
# Receivers
# --------------------------------------------------------------------------------------


def _identity_severity() -> dict[Severity, PagerDutySeverity]:
    return {"critical": "critical", "warning": "warning", "info": "info"}


class HttpReceiverConfig(Model):
    """Settings every HTTP receiver has."""

    send_resolved: bool = True
    """Send a message when an alert resolves (on by default for every receiver)."""
    timeout: Duration = 10.0
    """Per-request timeout; a request that takes longer is retried."""
    min_interval: OptionalDuration = 0.0
    """Least time between two requests to this receiver."""


class PagerDutyReceiver(HttpReceiverConfig):
    """PagerDuty Events API v2: one event per alert instance, resolved by ``dedup_key``."""

    type: Literal["pagerduty"]
    routing_key: SecretStr
    url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"
    severity_map: dict[Severity, PagerDutySeverity] = Field(default_factory=_identity_severity)
    client: str = "app-monitor"
    client_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _key(self) -> Self:
        key = self.routing_key.get_secret_value()
        if not key.strip():
            raise ValueError("routing_key is empty")
        return self


class SlackReceiver(HttpReceiverConfig):
    """Slack incoming webhook: Block Kit messages, alerts firing together grouped."""

    type: Literal["slack"]
    webhook_url: SecretHttpUrl
    max_alerts: int = Field(default=20, ge=1, le=40)
    """Alerts listed in one message; the rest are counted as "...and N more"."""
    min_interval: OptionalDuration = 1.0
    """Least time between two messages: Slack allows one per second per webhook."""


class WebhookReceiver(HttpReceiverConfig):
    """Generic JSON webhook: a batch of alerts per request."""

    type: Literal["webhook"]
    url: SecretHttpUrl
    bearer_token: SecretStr | None = None
    max_alerts: int = Field(default=100, ge=1, le=1000)


class LogReceiver(Model):
    """Writes alerts to the daemon's log; the receiver used when none is configured."""

    type: Literal["log"]
    send_resolved: bool = True


Receiver = Annotated[
    PagerDutyReceiver | SlackReceiver | WebhookReceiver | LogReceiver,
    Field(discriminator="type"),
]


# --------------------------------------------------------------------------------------
# Routes and silences
# --------------------------------------------------------------------------------------


class Route(Model):
    """Alerts whose labels match go to ``receivers``; the first matching route wins
    unless it says ``continue: true``. Labels include ``alertname`` and ``severity``."""

    match: LabelMatch = Field(default_factory=dict)
    match_re: LabelRegexMatch = Field(default_factory=dict)
    receivers: tuple[str, ...] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue")
    group_by: tuple[str, ...] = ()
    """Labels that split one receiver's alerts into separate messages (default: none)."""
    group_wait: OptionalDuration = 0.0
    """Hold a new alert this long so that others firing just after share its message."""
    repeat_interval: Duration | None = 4 * 3600.0
    """Notify again while an alert keeps firing; ``null`` never repeats."""


def _hhmm(value: str) -> str:
    if value == "24:00":
        return value
    try:
        time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected a time of day as HH:MM, got {value!r}") from None
    return value


TimeOfDay = Annotated[str, AfterValidator(_hhmm)]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)"
        ) from None
    return value


TimeZone = Annotated[str, AfterValidator(_zone)]


class Recurrence(Model):
    """A weekly maintenance window in local time: ``days`` at ``start``..``end``.

    ``end`` earlier than ``start`` crosses midnight (the window belongs to the day it
    starts on). Local time follows the zone's daylight-saving rules.
    """

    days: tuple[Weekday, ...] = WEEKDAYS
    start: TimeOfDay
    end: TimeOfDay
    time_zone: TimeZone = "UTC"

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end are the same time; the window would be empty")
        if not self.days:
            raise ValueError("days is empty")
        return self


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(
            "give the time zone, e.g. 2026-01-01T02:00:00Z or 2026-01-01T02:00:00+01:00"
        )
    return value


AwareDatetime = Annotated[datetime | None, AfterValidator(_aware)]


class Silence(Model):
    """Mutes matching alerts between ``start`` and ``end`` and/or in a weekly window.

    Silences stop triggers and repeats (checked again before every delivery attempt);
    an alert that was already notified still gets its resolve.
    """

    match: LabelMatch = Field(default_factory=dict)
    match_re: LabelRegexMatch = Field(default_factory=dict)
    start: AwareDatetime = None
    end: AwareDatetime = None
    recurring: Recurrence | None = None
    comment: str = ""

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.end is None and self.recurring is None:
            raise ValueError(
                "a silence needs an `end` or a `recurring` window "
                "(to turn a rule off for good, set `enabled: false` on it)"
            )
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end is not after start")
        return self


# --------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------


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
    runbook_url: HttpUrl | None = None
    dashboard_url: HttpUrl | None = None
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

"""``deploys:``: deploy markers, the release comparison and the rollback switch.

Only ``settle``, ``window`` and ``rollback`` are in the SPEC's contract; the rest tunes
the comparison (see docs/deploys.md, "Tuning").
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from monitor.kernel.config.types import Duration, HttpUrl, Model, Name


class RollbackConfig(Model):
    """The opt-in ``heroku_rollback`` receiver (see docs/deploys.md for the risks)."""

    enabled: bool = False
    dry_run: bool = True
    """Log and announce what would be done, call nothing (the default)."""
    api_key: SecretStr | None = None
    """``HEROKU_API_KEY``: a key allowed to create releases on the app."""
    within: Duration = 1800.0
    """Roll back only for a regression found this soon after the deploy."""
    api_url: HttpUrl = "https://api.heroku.com"

    @model_validator(mode="after")
    def _key_when_live(self) -> Self:
        if self.enabled and not self.dry_run and self.api_key is None:
            raise ValueError("rollback.enabled with dry_run: false needs api_key (HEROKU_API_KEY)")
        return self


class DeploysConfig(Model):
    settle: Duration = 300.0
    """Wait this long after a release before its traffic counts as "after"."""
    window: Duration = 1800.0
    """Compare this long after the settle time against this long before the release."""
    first_look: Duration = 600.0
    """Earliest comparison: once this much of the after-window has passed, a regression
    is reported early; "pass" waits for the whole window."""
    step: Duration = 60.0
    """Spacing of the stored history points (the comparison's time resolution)."""
    alpha: float = Field(default=0.001, gt=0.0, lt=0.5)
    """One-sided significance level of every test (strict: there are many routes)."""
    step_alpha: float = Field(default=0.001, gt=0.0, lt=0.5)
    """A router signal must also have moved step by step: its per-step values (p50, p95,
    5xx ratio of each minute) after against before, at this level. Guards against one
    burst or correlated requests passing for a shift of the whole window."""
    min_step_requests: int = Field(default=5, ge=1)
    """Requests a step needs to count in the per-step test."""
    min_requests: int = Field(default=200, ge=1)
    """Requests a route needs in each window before its latency or 5xx ratio is judged."""
    latency_ratio: float = Field(default=1.5, gt=1.0)
    """Least after/before ratio of p50 or p95 service time that counts as a regression."""
    latency_increase: Duration = 0.05
    """...and least absolute increase (a 2 ms -> 4 ms route is not a regression)."""
    error_ratio_increase: float = Field(default=0.01, gt=0.0, le=1.0)
    """Least absolute rise of the 5xx ratio or H12 rate (0.01: one point in a hundred)..."""
    error_ratio_factor: float = Field(default=2.0, gt=1.0)
    """...and least after/before factor."""
    min_calls: int = Field(default=50, ge=1)
    """pg_stat_statements calls a query needs in each window."""
    query_ratio: float = Field(default=2.0, gt=1.0)
    query_increase: Duration = 0.005
    min_points: int = Field(default=5, ge=3)
    """Gauge readings (dyno memory, real-user p75) needed in each window."""
    vitals_ratio: float = Field(default=1.25, gt=1.0)
    memory_ratio: float = Field(default=1.2, gt=1.0)
    keep_releases: int = Field(default=10, ge=1, le=100)
    """Releases per app exported as ``monitor_deploy_timestamp_seconds`` and compared."""
    max_routes: int = Field(default=500, ge=1)
    """Routes per app compared (the busiest ones)."""
    notify: tuple[Name, ...] = ()
    """Receivers (pagerduty, slack) told of each new deploy: a PagerDuty change event
    and a Slack message."""
    rollback: RollbackConfig = Field(default_factory=RollbackConfig)

    @model_validator(mode="after")
    def _windows(self) -> Self:
        if self.first_look > self.window:
            raise ValueError("first_look must not exceed window")
        if self.step * 3 > self.window:
            raise ValueError("step must be at most a third of window")
        return self

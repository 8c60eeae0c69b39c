"""``state:``: where the alert state database lives, and the leadership lease."""

from __future__ import annotations

from pydantic import field_validator, model_validator

from monitor.kernel.config.types import Duration, Model


class StateConfig(Model):
    """Where alert state and the delivery outbox live, and how leadership is leased.

    With the defaults a leader that vanishes (host lost, process frozen, network cut) is
    replaced within ``lease + lock_retry`` = 35 s, plus one connect and load: well under
    a minute (see docs/alerting.md, "Leadership").
    """

    url: str = "sqlite:///monitor-state.db"
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``
    or a ``postgresql://`` URL."""
    lock_retry: Duration = 5.0
    """How often a daemon that is not the alerting leader tries to take the lease."""
    lease: Duration = 30.0
    """How long the leader's lease lasts without renewal (by the database server's
    clock); a leader that cannot renew stops delivering when it runs out."""
    lease_renew: Duration = 10.0
    """How often the leader renews its lease."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgres://", "postgresql://")):
            raise ValueError("expected sqlite:///path or a postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _renew_within_lease(self) -> StateConfig:
        if not 0 < self.lease_renew * 2 <= self.lease:
            raise ValueError("state.lease_renew must be positive and at most half of state.lease")
        if self.lock_retry <= 0:
            raise ValueError("state.lock_retry must be positive")
        return self

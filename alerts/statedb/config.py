"""``state:``: where the alert state database lives and how often to try to lead."""

from __future__ import annotations

from pydantic import field_validator

from monitor.kernel.config.types import Duration, Model


class StateConfig(Model):
    """Where alert state and the delivery outbox live."""

    url: str = "sqlite:///monitor-state.db"
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``
    or a ``postgresql://`` URL (leader election with an advisory lock)."""
    lock_retry: Duration = 5.0
    """How often a daemon that is not the alerting leader tries to become it."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgres://", "postgresql://")):
            raise ValueError("expected sqlite:///path or a postgresql:// URL")
        return value

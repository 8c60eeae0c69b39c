"""Default deadlines derived from intervals."""

from __future__ import annotations

MAX_DEFAULT_TIMEOUT = 10.0


def job_timeout(interval: float) -> float:
    """80% of the interval, at most 10 s: a run never overlaps the next one."""
    return min(interval * 0.8, MAX_DEFAULT_TIMEOUT)

"""The release comparisons: when each release is compared, and its verdict.

For release R of an app (P the release before it, N the one after, if any):

* before = ``[R - window, R]``, but not earlier than ``P + settle`` when P is that recent
  (the previous release's own settling is not its steady state);
* after = ``[R + settle, R + settle + window]``, cut at N (a newer release ends it);
* from ``first_look`` into the after-window, each history step re-runs the comparison:
  a regression is reported as soon as it is found (and the verdict is then final);
  "pass" and "insufficient" wait for the whole window.

A release whose before-window the history does not reach (the daemon started after it)
is "insufficient" for good; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.deploys.compare import Finding, compare, verdict
from collectors.deploys.config import DeploysConfig
from collectors.deploys.history import History
from collectors.heroku_logs.releases import ReleaseEvent

PENDING = "pending"


@dataclass(slots=True)
class Comparison:
    release: ReleaseEvent
    previous: ReleaseEvent | None
    verdict: str = PENDING
    findings: list[Finding] = field(default_factory=list)
    final: bool = False
    decided_at: float | None = None
    before: tuple[float, float] | None = None
    after: tuple[float, float] | None = None

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.regressed]


class ReleaseWatch:
    def __init__(self, config: DeploysConfig, history: History) -> None:
        self.config = config
        self.history = history
        self.comparisons: dict[tuple[str, int], Comparison] = {}

    def windows(
        self, release: ReleaseEvent, previous: ReleaseEvent | None, newer: ReleaseEvent | None
    ) -> tuple[tuple[float, float], tuple[float, float]]:
        c = self.config
        at = release.released_at
        before_start = at - c.window
        if previous is not None and before_start < previous.released_at + c.settle < at:
            before_start = previous.released_at + c.settle
        after_start = at + c.settle
        after_end = after_start + c.window
        if newer is not None:
            after_end = min(after_end, newer.released_at)
        return (before_start, at), (after_start, after_end)

    def adopt(
        self, releases: list[ReleaseEvent], stored: dict[int, tuple[str, float, list[Finding]]]
    ) -> None:
        """Verdicts decided before a restart (from the store): final, kept as they were."""
        for i, release in enumerate(releases):
            key = (release.app, release.version)
            found = stored.get(release.version)
            if found is None or key in self.comparisons:
                continue
            previous = releases[i + 1] if i + 1 < len(releases) else None
            result, decided_at, findings = found
            comparison = Comparison(release, previous)
            self._decide(comparison, result, findings, decided_at)
            self.comparisons[key] = comparison

    def evaluate(self, app: str, releases: list[ReleaseEvent], now: float) -> list[Comparison]:
        """Advance the comparisons of ``app``'s releases (newest first); returns those
        whose verdict was decided in this call."""
        decided = []
        for i, release in enumerate(releases):
            key = (app, release.version)
            comparison = self.comparisons.get(key)
            previous = releases[i + 1] if i + 1 < len(releases) else None
            if comparison is None:
                comparison = self.comparisons[key] = Comparison(release, previous)
            if comparison.final:
                continue
            newer = releases[i - 1] if i > 0 else None
            if self._step(comparison, newer, now):
                decided.append(comparison)
        keep = {(app, r.version) for r in releases}
        for key in [k for k in self.comparisons if k[0] == app and k not in keep]:
            del self.comparisons[key]
        return decided

    def _step(self, comparison: Comparison, newer: ReleaseEvent | None, now: float) -> bool:
        c = self.config
        (b0, b1), (a0, a1) = self.windows(comparison.release, comparison.previous, newer)
        comparison.before, comparison.after = (b0, b1), (a0, a1)
        if not self.history.covers(b0):
            if self.history.first is not None and now >= a0:
                return self._decide(comparison, "insufficient", [], now)
            return False
        end = min(now, a1)
        complete = now >= a1
        if end - a0 < c.first_look and not complete:
            return False
        before = self.history.window(b0, b1)
        after = self.history.window(a0, end) if end > a0 else None
        if before is None or after is None:
            if complete:
                return self._decide(comparison, "insufficient", [], now)
            return False
        findings = compare(comparison.release.app, before, after, c)
        result = verdict(findings)
        comparison.findings = findings
        if result == "regressed" or complete:
            return self._decide(comparison, result, findings, now)
        return False

    @staticmethod
    def _decide(comparison: Comparison, result: str, findings: list[Finding], now: float) -> bool:
        comparison.verdict = result
        comparison.findings = findings
        comparison.final = True
        comparison.decided_at = now
        return True

"""App metrics in the l2met convention, from the app's own log lines.

``count#name=N`` adds N to a counter, ``sample#name=V`` sets a gauge, ``measure#name=V``
(and the legacy ``measure.name=V``) observes a histogram. A unit glued to the number
(``4ms``, ``100GB``) converts to the base unit (seconds, bytes) and names it in the
``unit`` label; a bare key counts 1; ``source=prod`` prefixes the name as l2met does
(``prod.db.latency``). Negative counts and measures are refused (as l2met does); a
negative sample is a fine gauge value.

Names come from the app, so they are bounded: an allow-list of globs and a cap on
distinct series; what does not fit is dropped and counted by reason.
"""

from __future__ import annotations

import fnmatch
import re

from collectors.heroku_logs.aggregate import DrainState, measure_histogram
from collectors.heroku_logs.config import L2metConfig
from collectors.heroku_logs.kv import UNIT_FACTORS, number

_NAME = re.compile(r"^[A-Za-z0-9_.\-:/]{1,100}$")
PREFIXES = ("count#", "sample#", "measure#", "measure.")
DROP_REASONS = ("not_allowed", "limit", "invalid")


def looks_like_l2met(message: str) -> bool:
    return "#" in message or "measure." in message


class L2metParser:
    def __init__(self, state: DrainState, config: L2metConfig) -> None:
        self._state = state
        self._allow = [re.compile(fnmatch.translate(g)) for g in config.allow]
        self._max = config.max_metrics
        self._verdicts: dict[str, bool] = {}

    def _allowed(self, name: str) -> bool:
        verdict = self._verdicts.get(name)
        if verdict is None:
            verdict = not self._allow or any(p.match(name) for p in self._allow)
            if len(self._verdicts) < 10_000:
                self._verdicts[name] = verdict
        return verdict

    def parse(self, app: str, message: str, now: float) -> bool:
        """Record the line's l2met metrics; False when it has none."""
        source = ""
        items: list[tuple[str, str, str]] = []
        for token in message.split():
            if token.startswith("source="):
                source = token[7:]
                continue
            for prefix in PREFIXES:
                if token.startswith(prefix):
                    name, _, value = token[len(prefix) :].partition("=")
                    kind = "measure" if prefix.startswith("measure") else prefix[:-1]
                    items.append((kind, name, value))
                    break
        if not items:
            return False
        for kind, name, value in items:
            self._record(app, kind, f"{source}.{name}" if source else name, value, now)
        return True

    def _drop(self, app: str, reason: str) -> None:
        self._state.app_dropped[(app, reason)] += 1

    def _record(self, app: str, kind: str, name: str, raw: str, now: float) -> None:
        if not _NAME.match(name):
            self._drop(app, "invalid")
            return
        if raw == "":
            value, unit = 1.0, ""
        else:
            parsed = number(raw)
            if parsed is None:
                self._drop(app, "invalid")
                return
            factor, unit = UNIT_FACTORS.get(parsed[1], (1.0, parsed[1][:16]))
            value = parsed[0] * factor
        if value < 0 and kind != "sample":
            self._drop(app, "invalid")
            return
        if not self._allowed(name):
            self._drop(app, "not_allowed")
            return
        state = self._state
        if kind == "count":
            key2 = (app, name)
            if key2 not in state.app_counts:
                if not self._admit(app):
                    return
                state.app_counts[key2] = 0.0
            state.app_counts[key2] += value
            return
        key3 = (app, name, unit)
        if kind == "sample":
            if key3 not in state.app_samples and not self._admit(app):
                return
            state.app_samples[key3] = (value, now)
            return
        histogram = state.app_measures.get(key3)
        if histogram is None:
            if not self._admit(app):
                return
            histogram = state.app_measures[key3] = measure_histogram()
        histogram.add(value)

    def _admit(self, app: str) -> bool:
        state = self._state
        held = len(state.app_counts) + len(state.app_samples) + len(state.app_measures)
        if held >= self._max:
            self._drop(app, "limit")
            return False
        if not state.admit():
            self._drop(app, "limit")
            return False
        return True

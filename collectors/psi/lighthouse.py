"""Read lab values from a PageSpeed Insights v5 answer's ``lighthouseResult``.

Only ``audits.*.numericValue`` with its ``numericUnit`` is used, never the localised
``displayValue`` ("2,4 s" with a no-break space; pagespeed_exporter#38 read CLS as 0
from it). A run that Lighthouse itself reports as failed (``runtimeError``) or that
lacks the performance category is an error, so the last good values stay exported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

TIMING_AUDITS: dict[str, str] = {
    "largest-contentful-paint": "lcp",
    "first-contentful-paint": "fcp",
    "total-blocking-time": "tbt",
    "speed-index": "speed_index",
    "server-response-time": "ttfb",
    "interactive": "tti",
}
"""Lighthouse audits in milliseconds, by the ``metric`` label they get."""
CLS_AUDIT = "cumulative-layout-shift"


class LighthouseError(ValueError):
    """Lighthouse could not measure the page; ``code`` is its runtimeError code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


@dataclass(frozen=True, slots=True)
class LabResult:
    timings: Mapping[str, float]
    """Seconds, by metric label."""
    cls: float | None
    score: float | None
    """The performance category score, 0..1."""


def _numeric(audit: object, unit: str) -> float | None:
    if not isinstance(audit, dict) or audit.get("numericUnit") != unit:
        return None
    value = audit.get("numericValue")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def parse_lab(body: Mapping[str, object]) -> LabResult:
    result = body.get("lighthouseResult")
    if not isinstance(result, dict):
        raise LighthouseError("NO_LIGHTHOUSE_RESULT", "the answer has no lighthouseResult")
    runtime = result.get("runtimeError")
    if isinstance(runtime, dict) and runtime.get("code") not in (None, "NO_ERROR"):
        raise LighthouseError(str(runtime.get("code")), str(runtime.get("message") or "")[:200])
    audits = result.get("audits")
    audits = audits if isinstance(audits, dict) else {}
    timings: dict[str, float] = {}
    for audit_id, label in TIMING_AUDITS.items():
        ms = _numeric(audits.get(audit_id), "millisecond")
        if ms is not None:
            timings[label] = ms / 1000.0
    cls = _numeric(audits.get(CLS_AUDIT), "unitless")
    categories = result.get("categories")
    performance = categories.get("performance") if isinstance(categories, dict) else None
    if not isinstance(performance, dict):
        raise LighthouseError("NO_PERFORMANCE_CATEGORY", "no performance category in the result")
    raw_score = performance.get("score")
    score = None
    if isinstance(raw_score, int | float) and not isinstance(raw_score, bool):
        score = float(raw_score) if 0 <= raw_score <= 1 else None
    if not timings and cls is None and score is None:
        raise LighthouseError("NO_METRICS", "no lab metric in the result")
    return LabResult(timings, cls, score)

"""Validate what the web-vitals library sends: one metric object or an array of them.

A metric object (web-vitals v3-v6, ``src/types/base.ts``)::

    {"name": "LCP", "value": 2400.5, "rating": "good", "id": "v5-1700000000000-1234567890123",
     "delta": 2400.5, "navigationType": "navigate", "path": "/products/42"}

``path`` is added by the page's snippet (``location.pathname``); everything else not
checked here (``entries``, ``attribution``) is ignored. Values are milliseconds except
CLS. A structural problem rejects the whole beacon; a bad metric inside an array
rejects that metric only, so an older library that still sends FID loses nothing else.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from collectors.web_vitals import RATINGS, VitalName

NAMES: dict[str, VitalName] = {
    "LCP": "lcp",
    "INP": "inp",
    "CLS": "cls",
    "FCP": "fcp",
    "TTFB": "ttfb",
}

LIBRARY_THRESHOLDS: dict[VitalName, tuple[float, float]] = {
    "lcp": (2500, 4000),
    "inp": (200, 500),
    "cls": (0.1, 0.25),
    "fcp": (1800, 3000),
    "ttfb": (800, 1800),
}
"""The web-vitals library's own thresholds, in its units: what a genuine ``rating``
was computed with, whatever thresholds the monitor is configured with."""

MAX_VALUE: dict[VitalName, float] = {
    "lcp": 300_000,
    "fcp": 300_000,
    "ttfb": 300_000,
    "inp": 60_000,
    "cls": 50,
}
"""Largest plausible value (5 min for load timings, 1 min for an interaction)."""

NAVIGATION_TYPES = frozenset(
    {
        "navigate",
        "reload",
        "back-forward",
        "back-forward-cache",
        "prerender",
        "restore",
        "soft-navigation",
    }
)
_ID = re.compile(r"(?:v\d{1,2}-)?\d{10,16}-\d{10,16}")
MAX_PATH = 2048

REJECTIONS = (
    "invalid_json",
    "invalid_shape",
    "too_many_metrics",
    "unknown_name",
    "invalid_value",
    "invalid_id",
    "invalid_rating",
    "rating_mismatch",
    "invalid_navigation_type",
    "invalid_path",
)
"""Reasons a beacon or a metric in it is rejected (label values)."""


class BeaconError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Report:
    metric: VitalName
    value: float
    """In base units: seconds, CLS unitless."""
    id: str
    path: str | None


def _rating(value: float, metric: VitalName) -> str:
    good, poor = LIBRARY_THRESHOLDS[metric]
    return "good" if value <= good else "needs-improvement" if value <= poor else "poor"


def parse_report(item: object, check_rating: bool) -> Report:
    """One metric object; raises :class:`BeaconError` naming what is wrong."""
    if not isinstance(item, dict):
        raise BeaconError("invalid_shape", "a metric must be a JSON object")
    name = item.get("name")
    metric = NAMES.get(name) if isinstance(name, str) else None
    if metric is None:
        raise BeaconError("unknown_name", f"unknown metric name {str(item.get('name'))[:20]!r}")
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BeaconError("invalid_value", "value must be a number")
    if not math.isfinite(value) or not 0 <= value <= MAX_VALUE[metric]:
        raise BeaconError("invalid_value", f"{metric} value out of range")
    metric_id = item.get("id")
    if not isinstance(metric_id, str) or len(metric_id) > 40 or not _ID.fullmatch(metric_id):
        raise BeaconError("invalid_id", "id must be a web-vitals id such as v5-<ms>-<digits>")
    rating = item.get("rating")
    if rating is not None:
        if rating not in RATINGS:
            raise BeaconError("invalid_rating", "rating must be good, needs-improvement or poor")
        if check_rating and rating != _rating(value, metric):
            raise BeaconError("rating_mismatch", f"rating {rating!r} contradicts the value")
    navigation = item.get("navigationType")
    if navigation is not None and (
        not isinstance(navigation, str) or navigation not in NAVIGATION_TYPES
    ):
        raise BeaconError("invalid_navigation_type", "unknown navigationType")
    path = item.get("path")
    if path is not None and (not isinstance(path, str) or len(path) > MAX_PATH):
        raise BeaconError("invalid_path", f"path must be a string of at most {MAX_PATH} characters")
    base = float(value) if metric == "cls" else value / 1000.0
    return Report(metric, base, metric_id, path)


def parse_beacon(body: bytes, max_metrics: int) -> list[object]:
    """The metric objects of a beacon body (not yet validated one by one)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # also over-long integers and bad UTF-8
        raise BeaconError("invalid_json", "body is not JSON") from None
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list) or not data:
        raise BeaconError("invalid_shape", "expected a metric object or a non-empty array")
    if len(data) > max_metrics:
        raise BeaconError("too_many_metrics", f"at most {max_metrics} metrics per beacon")
    return data

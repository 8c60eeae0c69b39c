"""Parse CrUX API answers (``records:queryRecord``, ``records:queryHistoryRecord``).

Traps handled here (CrUX API and History API docs):

* CLS ``p75``/``start``/``end`` are strings ("0.05"); other metrics are numbers (ms);
* a metric may be absent (INP on low-interaction pages) or carry only percentiles;
* the History API marks ineligible periods with ``"NaN"`` strings and ``null`` p75s;
* dates are PST without DST, so the collection period ends at the end of ``lastDate``
  in UTC-8.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from collectors.web_vitals import VitalName

API_METRICS: dict[str, VitalName] = {
    "largest_contentful_paint": "lcp",
    "interaction_to_next_paint": "inp",
    "cumulative_layout_shift": "cls",
    "first_contentful_paint": "fcp",
    "experimental_time_to_first_byte": "ttfb",
}
"""CrUX metric names we export, by their short name."""

_PST = timezone(timedelta(hours=-8))


class RecordError(ValueError):
    """The answer does not have the documented shape."""


def number(raw: object) -> float | None:
    """A finite, non-negative number from a JSON number or numeric string, else None."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


def to_base_unit(metric: VitalName, raw: object) -> float | None:
    """Milliseconds become seconds; CLS stays unitless."""
    value = number(raw)
    if value is None:
        return None
    return value if metric == "cls" else value / 1000.0


@dataclass(frozen=True, slots=True)
class Bin:
    start: float
    end: float | None
    """None for the open last bin."""
    density: float


@dataclass(frozen=True, slots=True)
class MetricData:
    p75: float | None
    """In base units (seconds, CLS unitless)."""
    histogram: tuple[Bin, ...]


@dataclass(frozen=True, slots=True)
class DailyRecord:
    metrics: Mapping[VitalName, MetricData]
    first_date: datetime
    last_date: datetime
    """Start of ``firstDate`` and end of ``lastDate``, as aware datetimes."""
    last_day: date
    """``lastDate`` as CrUX wrote it."""
    normalized_key: str


def _date(raw: object, where: str) -> datetime:
    if not isinstance(raw, dict):
        raise RecordError(f"{where} missing")
    try:
        return datetime(int(raw["year"]), int(raw["month"]), int(raw["day"]), tzinfo=_PST)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"{where} invalid: {exc}") from None


def _period(raw: object, where: str) -> tuple[datetime, datetime]:
    if not isinstance(raw, dict):
        raise RecordError(f"{where} missing")
    first = _date(raw.get("firstDate"), f"{where}.firstDate")
    last = _date(raw.get("lastDate"), f"{where}.lastDate") + timedelta(days=1)
    return first.astimezone(UTC), last.astimezone(UTC)


def _histogram(metric: VitalName, raw: object) -> tuple[Bin, ...]:
    if not isinstance(raw, list):
        return ()
    bins: list[Bin] = []
    for item in raw:
        if not isinstance(item, dict):
            return ()
        start = to_base_unit(metric, item.get("start"))
        end = to_base_unit(metric, item["end"]) if "end" in item else None
        density = number(item.get("density"))
        if start is None or density is None or ("end" in item and end is None):
            return ()  # a malformed histogram is no histogram, never a guess
        bins.append(Bin(start, end, density))
    return tuple(bins)


def _record(body: Mapping[str, object]) -> Mapping[str, object]:
    record = body.get("record")
    if not isinstance(record, dict):
        raise RecordError("no 'record' in the answer")
    return record


def _key(record: Mapping[str, object]) -> str:
    key = record.get("key")
    if isinstance(key, dict):
        value = key.get("origin") or key.get("url")
        if isinstance(value, str):
            return value
    return ""


def parse_daily(body: Mapping[str, object]) -> DailyRecord:
    record = _record(body)
    raw_metrics = record.get("metrics")
    if not isinstance(raw_metrics, dict):
        raise RecordError("no 'record.metrics' in the answer")
    metrics: dict[VitalName, MetricData] = {}
    for api_name, short in API_METRICS.items():
        raw = raw_metrics.get(api_name)
        if not isinstance(raw, dict):
            continue  # absent metric: absent series, never 0
        percentiles = raw.get("percentiles")
        p75 = to_base_unit(short, percentiles.get("p75")) if isinstance(percentiles, dict) else None
        metrics[short] = MetricData(p75, _histogram(short, raw.get("histogram")))
    first, last = _period(record.get("collectionPeriod"), "record.collectionPeriod")
    last_day = (last - timedelta(days=1)).astimezone(_PST).date()
    return DailyRecord(metrics, first, last, last_day, _key(record))


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    period_ends: tuple[datetime, ...]
    """End of each weekly period, oldest first."""
    p75s: Mapping[VitalName, tuple[float | None, ...]]
    """Per metric, aligned with ``period_ends``; None marks a gap."""


def parse_history(body: Mapping[str, object]) -> HistoryRecord:
    record = _record(body)
    raw_periods = record.get("collectionPeriods")
    if not isinstance(raw_periods, list) or not raw_periods:
        raise RecordError("no 'record.collectionPeriods' in the answer")
    ends = tuple(_period(p, f"record.collectionPeriods[{i}]")[1] for i, p in enumerate(raw_periods))
    raw_metrics = record.get("metrics")
    if not isinstance(raw_metrics, dict):
        raise RecordError("no 'record.metrics' in the answer")
    series: dict[VitalName, tuple[float | None, ...]] = {}
    for api_name, short in API_METRICS.items():
        raw = raw_metrics.get(api_name)
        if not isinstance(raw, dict):
            continue
        timeseries = raw.get("percentilesTimeseries")
        values = timeseries.get("p75s") if isinstance(timeseries, dict) else None
        if not isinstance(values, list):
            continue
        if len(values) != len(ends):
            raise RecordError(f"{api_name}: {len(values)} p75s for {len(ends)} periods")
        series[short] = tuple(to_base_unit(short, v) for v in values)
    return HistoryRecord(ends, series)


def share_below(histogram: tuple[Bin, ...], threshold: float) -> float | None:
    """Density of values at or below ``threshold``.

    Bins wholly below count fully; a bin that straddles the threshold counts in
    proportion (uniform within the bin); an open last bin straddling it makes the share
    unknown (None). Bin positions mean nothing: CrUX has changed its edges before.
    """
    if not histogram:
        return None
    total = 0.0
    for b in histogram:
        if b.end is not None and b.end <= threshold:
            total += b.density
        elif b.start >= threshold:
            continue
        elif b.end is None:
            return None
        else:
            total += b.density * (threshold - b.start) / (b.end - b.start)
    return round(min(total, 1.0), 6)


def share_above(histogram: tuple[Bin, ...], threshold: float) -> float | None:
    """Density of values above ``threshold`` (same rules as :func:`share_below`)."""
    if not histogram:
        return None
    total = 0.0
    for b in histogram:
        if b.start >= threshold:
            total += b.density
        elif b.end is not None and b.end <= threshold:
            continue
        elif b.end is None:
            return None
        else:
            total += b.density * (b.end - threshold) / (b.end - b.start)
    return round(min(total, 1.0), 6)

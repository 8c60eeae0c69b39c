"""CrUX daily field data (``records:queryRecord``) for one origin or URL.

Exposition (``target`` is the origin or URL as configured)::

    crux_data_available{target="https://a.example",origin="https://a.example",form_factor="PHONE"} 1
    crux_p75_seconds{target=...,origin=...,form_factor="PHONE",metric="lcp"} 3.0
    crux_cls_p75{target=...,origin=...,form_factor="PHONE"} 0.05
    crux_good_ratio{target=...,origin=...,form_factor="PHONE",metric="lcp"} 0.9343
    crux_poor_ratio{target=...,origin=...,form_factor="PHONE",metric="lcp"} 0.0239
    crux_p75_rating{target=...,origin=...,form_factor="PHONE",metric="lcp",rating="good"} 0.0
    crux_collection_period_start_timestamp_seconds{target=...,origin=...,form_factor="PHONE"} 1.7e9
    crux_collection_period_end_timestamp_seconds{target=...,origin=...,form_factor="PHONE"} 1.770e9
    crux_fetched_timestamp_seconds{target=...,origin=...,form_factor="PHONE"} 1.770e9
    crux_requests_total{target=...,api="daily",outcome="ok"} 2.0

A 404 means CrUX has no data: ``crux_data_available 0`` and nothing else, a successful
run. Metrics CrUX leaves out (INP on low-interaction pages) are absent, never 0.
The data changes once a day: after an answer whose collection period differs from the
previous one, that form factor is not asked again until the next UTC day. When a run
fails (429 after backoff, 5xx, 400, timeout) it still exports the last answer, which
stays the current CrUX data until its period changes; ``monitor_collector_up`` is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from collectors.crux.job import CruxJob
from collectors.crux.records import parse_daily, share_above, share_below
from collectors.web_vitals import RATINGS, FormFactor
from monitor.kernel.snapshot import Sample, gauge

_KEY = ("origin", "form_factor")
CRUX_DATA_AVAILABLE = gauge(
    "crux_data_available", "1 if CrUX has data for the origin or URL, 0 if it answered 404", *_KEY
)
CRUX_P75_SECONDS = gauge(
    "crux_p75_seconds", "75th percentile of a timing metric over 28 days", *_KEY, "metric"
)
CRUX_CLS_P75 = gauge("crux_cls_p75", "75th percentile of Cumulative Layout Shift", *_KEY)
CRUX_GOOD_RATIO = gauge(
    "crux_good_ratio", "Share of page loads rated good (configured thresholds)", *_KEY, "metric"
)
CRUX_POOR_RATIO = gauge(
    "crux_poor_ratio", "Share of page loads rated poor (configured thresholds)", *_KEY, "metric"
)
CRUX_P75_RATING = gauge(
    "crux_p75_rating", "1 for the rating of the p75 value, else 0", *_KEY, "metric", "rating"
)
CRUX_PERIOD_START = gauge(
    "crux_collection_period_start_timestamp_seconds", "Start of the collection period", *_KEY
)
CRUX_PERIOD_END = gauge(
    "crux_collection_period_end_timestamp_seconds",
    "End of the collection period's last date (PST, as CrUX dates are)",
    *_KEY,
)
CRUX_FETCHED = gauge(
    "crux_fetched_timestamp_seconds", "When the exported answer was fetched", *_KEY
)


@dataclass(frozen=True, slots=True)
class _Answer:
    samples: tuple[Sample, ...]
    period_end: datetime | None
    """None when CrUX answered "no data"."""
    changed_on: date | None
    """UTC day on which this answer's period replaced a different one."""


class DailyJob(CruxJob[_Answer]):
    collector = "crux"
    api = "daily"
    interval_key = "interval"

    async def _refresh(self, form_factor: FormFactor, deadline: float, now: float) -> None:
        today = datetime.fromtimestamp(now, UTC).date()
        previous = self._answers.get(form_factor)
        if previous is not None and previous.changed_on == today:
            return  # today's daily update is in; CrUX will not change again today
        answer = self._answer(form_factor, await self._ask(form_factor, deadline), now)
        changed = previous is not None and previous.period_end != answer.period_end
        changed_on = today if changed else (previous.changed_on if previous else None)
        self._answers[form_factor] = _Answer(answer.samples, answer.period_end, changed_on)

    def _kept_samples(self) -> list[Sample]:
        return [s for answer in self._answers.values() for s in answer.samples]

    def _answer(
        self, form_factor: FormFactor, body: dict[str, object] | None, now: float
    ) -> _Answer:
        labels = (self.origin, form_factor)
        t = self.target
        if body is None:
            available = CRUX_DATA_AVAILABLE(0, *labels, target=t)
            return _Answer((available, CRUX_FETCHED(now, *labels, target=t)), None, None)
        record = parse_daily(body)
        out = [
            CRUX_DATA_AVAILABLE(1, *labels, target=t),
            CRUX_PERIOD_START(record.first_date.timestamp(), *labels, target=t),
            CRUX_PERIOD_END(record.last_date.timestamp(), *labels, target=t),
            CRUX_FETCHED(now, *labels, target=t),
        ]
        for metric, data in record.metrics.items():
            threshold = self._config.thresholds.of(metric)
            if data.p75 is not None:
                if metric == "cls":
                    out.append(CRUX_CLS_P75(data.p75, *labels, target=t))
                else:
                    out.append(CRUX_P75_SECONDS(data.p75, *labels, metric, target=t))
                rating = threshold.rate(data.p75)
                out.extend(
                    CRUX_P75_RATING(1 if r == rating else 0, *labels, metric, r, target=t)
                    for r in RATINGS
                )
            good = share_below(data.histogram, threshold.good)
            if good is not None:
                out.append(CRUX_GOOD_RATIO(good, *labels, metric, target=t))
            poor = share_above(data.histogram, threshold.poor)
            if poor is not None:
                out.append(CRUX_POOR_RATIO(poor, *labels, metric, target=t))
        return _Answer(tuple(out), record.last_date, None)

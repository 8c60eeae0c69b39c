"""CrUX History API (``records:queryHistoryRecord``): weekly p75 series per metric.

Exposition (``periods_ago="0"`` is the latest weekly period)::

    crux_history_p75_seconds{target=...,origin=...,form_factor=...,metric="lcp",periods_ago="0"} 2.6
    crux_history_cls_p75{target=...,origin=...,form_factor="PHONE",periods_ago="0"} 0.05
    crux_p75_change_ratio{target=...,origin=...,form_factor="PHONE",metric="lcp",weeks="4"} 0.3
    crux_history_period_end_timestamp_seconds{target=...,origin=...,form_factor="PHONE"} 1.77e9
    crux_history_data_available{target=...,origin=...,form_factor="PHONE"} 1.0
    crux_requests_total{target=...,api="history",outcome="ok"} 2.0

``crux_p75_change_ratio`` is ``p75(now) / p75(weeks ago) - 1``: 0.3 means "30% worse
than four weeks ago" for every metric (lower is better for all of them). A period
CrUX marks ineligible (``"NaN"``, ``null``) is a gap: its point is absent, and so is a
change ratio that would need it.
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors.crux.job import CruxJob
from collectors.crux.records import parse_history
from collectors.web_vitals import FormFactor
from monitor.kernel.snapshot import Sample, gauge

_KEY = ("origin", "form_factor")
HISTORY_P75_SECONDS = gauge(
    "crux_history_p75_seconds",
    "Weekly 75th percentile of a timing metric, by periods before the latest",
    *_KEY,
    "metric",
    "periods_ago",
)
HISTORY_CLS_P75 = gauge(
    "crux_history_cls_p75", "Weekly 75th percentile of CLS", *_KEY, "periods_ago"
)
P75_CHANGE_RATIO = gauge(
    "crux_p75_change_ratio",
    "Latest weekly p75 relative to the p75 that many weeks before, minus 1",
    *_KEY,
    "metric",
    "weeks",
)
HISTORY_PERIOD_END = gauge(
    "crux_history_period_end_timestamp_seconds", "End of the latest weekly period", *_KEY
)
HISTORY_AVAILABLE = gauge(
    "crux_history_data_available", "1 if the History API has data, 0 if it answered 404", *_KEY
)


def change_ratio(series: Sequence[float | None], weeks: int) -> float | None:
    """``latest / series[-1 - weeks] - 1``, or None across a gap or a zero baseline."""
    if len(series) <= weeks:
        return None
    latest, then = series[-1], series[-1 - weeks]
    if latest is None or then is None or then == 0:
        return None
    return latest / then - 1.0


class HistoryJob(CruxJob[tuple[Sample, ...]]):
    collector = "crux_history"
    api = "history"
    interval_key = "history_interval"

    async def _refresh(self, form_factor: FormFactor, deadline: float, now: float) -> None:
        self._answers[form_factor] = self._samples(
            form_factor, await self._ask(form_factor, deadline)
        )

    def _kept_samples(self) -> list[Sample]:
        return [s for samples in self._answers.values() for s in samples]

    def _samples(
        self, form_factor: FormFactor, body: dict[str, object] | None
    ) -> tuple[Sample, ...]:
        labels = (self.origin, form_factor)
        t = self.target
        if body is None:
            return (HISTORY_AVAILABLE(0, *labels, target=t),)
        record = parse_history(body)
        out = [
            HISTORY_AVAILABLE(1, *labels, target=t),
            HISTORY_PERIOD_END(record.period_ends[-1].timestamp(), *labels, target=t),
        ]
        for metric, series in record.p75s.items():
            for ago, value in enumerate(reversed(series)):
                if value is None:
                    continue
                if metric == "cls":
                    out.append(HISTORY_CLS_P75(value, *labels, str(ago), target=t))
                else:
                    out.append(HISTORY_P75_SECONDS(value, *labels, metric, str(ago), target=t))
            for weeks in self._config.compare_weeks:
                ratio = change_ratio(series, weeks)
                if ratio is not None:
                    out.append(P75_CHANGE_RATIO(ratio, *labels, metric, str(weeks), target=t))
        return tuple(out)

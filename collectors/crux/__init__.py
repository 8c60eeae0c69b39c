"""Chrome UX Report field data: one :class:`CruxSource` per configured origin and URL.

Each source runs the daily job (:mod:`collectors.crux.daily`, hourly by default) and,
unless ``history: false``, the weekly History API job (:mod:`collectors.crux.history`).
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors.crux.client import CruxClient, RecordKey
from collectors.crux.config import CruxConfig
from collectors.crux.daily import DailyJob
from collectors.crux.history import HistoryJob
from collectors.crux.records import RecordError, parse_daily
from collectors.google_api import Backoff, GoogleApiError
from monitor.kernel.source import CheckResult, CollectorJob, Source


class CruxSource(Source):
    kind = "crux"

    def __init__(self, key: RecordKey, config: CruxConfig, backoff: Backoff | None = None) -> None:
        self.name = key.value
        self.key = key
        self.config = config
        self.client = CruxClient(config, backoff=backoff)
        self.daily = DailyJob(self.client, key, config)
        self.history = HistoryJob(self.client, key, config) if config.history else None

    def jobs(self) -> Sequence[CollectorJob]:
        return [self.daily] if self.history is None else [self.daily, self.history]

    async def check(self) -> CheckResult:
        item = f"crux/{self.name}"
        form_factor = self.config.form_factors[0]
        try:
            body = await self.client.query(
                "daily", self.key, form_factor, self.client.run_deadline()
            )
        except GoogleApiError as exc:
            return CheckResult(item, False, str(exc))
        if body is None:
            return CheckResult(item, True, f"API answers; no CrUX data for {form_factor} (404)")
        try:
            record = parse_daily(body)
        except RecordError as exc:
            return CheckResult(item, False, f"unexpected answer: {exc}")
        metrics = ", ".join(sorted(record.metrics)) or "no metrics"
        last = record.last_day.isoformat()
        return CheckResult(item, True, f"{form_factor}: {metrics}; period ends {last}")

    async def close(self) -> None:
        await self.client.close()


def sources(crux: CruxConfig | None, interval: float) -> list[Source]:
    """CrUX keeps its own interval (the data changes daily); ``interval`` is unused."""
    if crux is None:
        return []
    keys = [RecordKey("origin", o) for o in crux.origins] + [RecordKey("url", u) for u in crux.urls]
    return [CruxSource(key, crux) for key in keys]

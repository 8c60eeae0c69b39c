"""What the daily and the history job share: one run asks every form factor at once,
keeps each form factor's last answer, and exports the kept answers even when a run
fails (the CrUX data they hold stays current until CrUX publishes new data).
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Generic, Literal, TypeVar
from urllib.parse import urlsplit

from collectors.crux.client import Api, CruxClient, RecordKey
from collectors.crux.config import CruxConfig
from collectors.crux.records import RecordError
from collectors.google_api import GoogleApiError
from collectors.web_vitals import FormFactor
from monitor.kernel.snapshot import Sample, counter
from monitor.kernel.source import CollectorJob

A = TypeVar("A")

CRUX_REQUESTS = counter(
    "crux_requests_total", "CrUX API requests by API and outcome", "api", "outcome"
)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class CruxRunError(Exception):
    """Some form factors could not be read; the message names them (redacted)."""


class CruxJob(CollectorJob, Generic[A]):
    api: Api
    interval_key: Literal["interval", "history_interval"]

    def __init__(
        self,
        client: CruxClient,
        key: RecordKey,
        config: CruxConfig,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._key = key
        self._config = config
        self._wall_clock = wall_clock
        self.target = key.value
        self.origin = origin_of(key.value)
        self.interval = getattr(config, self.interval_key)
        self.timeout = config.timeout
        self._answers: dict[FormFactor, A] = {}
        """The last answer per form factor."""

    @abstractmethod
    async def _refresh(self, form_factor: FormFactor, deadline: float, now: float) -> None:
        """Ask about one form factor (or decide not to) and keep the answer."""

    @abstractmethod
    def _kept_samples(self) -> list[Sample]:
        """The samples of every kept answer."""

    async def _ask(self, form_factor: FormFactor, deadline: float) -> dict[str, object] | None:
        return await self._client.query(self.api, self._key, form_factor, deadline)

    async def collect(self) -> Sequence[Sample]:
        now = self._wall_clock()
        deadline = self._client.run_deadline()

        async def one(form_factor: FormFactor) -> str | None:
            try:
                await self._refresh(form_factor, deadline, now)
            except (GoogleApiError, RecordError) as exc:
                return f"{form_factor}: {exc}"
            return None

        results = await asyncio.gather(*(one(ff) for ff in self._config.form_factors))
        errors = [e for e in results if e is not None]
        if errors:
            raise CruxRunError("; ".join(errors))
        return self.current_samples()

    def failure_samples(self) -> Sequence[Sample]:
        return self.current_samples()

    def current_samples(self) -> list[Sample]:
        out = self._kept_samples()
        out.extend(
            CRUX_REQUESTS(n, api, outcome, target=self.target)
            for (api, outcome), n in sorted(self._client.attempts.items())
            if api == self.api
        )
        return out

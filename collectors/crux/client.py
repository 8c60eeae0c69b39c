"""A small CrUX API client: one POST per origin or URL and form factor.

``query`` returns the parsed JSON body, or None when the API answers 404 (the origin
or URL has no CrUX data: not an error). Any other failure raises
:class:`~collectors.google_api.GoogleApiError`. 429 answers are retried with jittered
backoff within the caller's deadline; 400 answers never are.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import httpx

from collectors.crux.config import CruxConfig
from collectors.crux.records import API_METRICS
from collectors.google_api import Backoff, error_from_response, json_body, send_with_backoff
from collectors.web_vitals import FormFactor

Api = Literal["daily", "history"]
_METHODS: dict[Api, str] = {"daily": "records:queryRecord", "history": "records:queryHistoryRecord"}


@dataclass(frozen=True, slots=True)
class RecordKey:
    """What to ask about: an origin (``https://example.com``) or a page URL."""

    kind: Literal["origin", "url"]
    value: str


def _is_not_found(response: httpx.Response) -> bool:
    """CrUX's own "no data" answer, as opposed to a 404 from a wrong ``endpoint``."""
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    message = str(error.get("message", "")).lower()
    return error.get("status") == "NOT_FOUND" or "data not found" in message


class CruxClient:
    def __init__(self, config: CruxConfig, *, backoff: Backoff | None = None) -> None:
        self._config = config
        self._backoff = backoff or Backoff()
        self._http: httpx.AsyncClient | None = None
        self.attempts: Counter[tuple[Api, str]] = Counter()
        """HTTP attempts by (api, outcome), for ``crux_requests_total``."""

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self._config.request_timeout,
                headers={"User-Agent": "app-monitor (CrUX collector)"},
            )
        return self._http

    async def query(
        self, api: Api, key: RecordKey, form_factor: FormFactor, deadline: float
    ) -> dict[str, object] | None:
        """The answer for ``key`` and ``form_factor``; None if CrUX has no data for it."""
        body: dict[str, object] = {
            key.kind: key.value,
            "formFactor": form_factor,
            "metrics": list(API_METRICS),
        }
        if api == "history":
            body["collectionPeriodCount"] = self._config.history_periods
        url = f"{self._config.endpoint.rstrip('/')}/{_METHODS[api]}"
        params = {"key": self._config.api_key.get_secret_value()}
        client = self._client()

        def count(outcome: str) -> None:
            self.attempts[(api, outcome)] += 1

        response = await send_with_backoff(
            lambda: client.post(url, params=params, json=body),
            max_retries=self._config.max_retries,
            deadline=deadline - self._config.request_timeout,
            backoff=self._backoff,
            attempt_timeout=self._config.request_timeout,
            on_attempt=count,
        )
        if response.status_code == 404 and _is_not_found(response):
            return None
        if response.status_code != 200:
            raise error_from_response(response)
        return json_body(response)

    def run_deadline(self) -> float:
        """The monotonic deadline of a run that starts now."""
        return time.monotonic() + self._config.timeout

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

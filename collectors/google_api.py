"""Calling Google's JSON APIs (CrUX, PageSpeed Insights): errors, outcomes, 429 backoff.

Google answers errors as ``{"error": {"code": 429, "message": "...", "status":
"RESOURCE_EXHAUSTED"}}``; some documented samples lack the ``error`` wrapper, so both
are read. The API key travels as ``?key=`` and is a registered secret: every message
built here goes through :func:`monitor.redact.redact`, which also masks ``key=``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from monitor.kernel.redact import redact

OUTCOMES = (
    "ok",
    "not_found",
    "rate_limited",
    "bad_request",
    "forbidden",
    "server_error",
    "http_error",
    "timeout",
    "network",
    "invalid_response",
)
"""Label values of the ``outcome``/``reason`` labels, a closed set."""


def outcome_of_status(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limited"
    if status == 400:
        return "bad_request"
    if status in (401, 403):
        return "forbidden"
    if status >= 500:
        return "server_error"
    return "http_error"


class GoogleApiError(Exception):
    """A failed call; ``outcome`` is one of :data:`OUTCOMES`; the message is redacted."""

    def __init__(self, outcome: str, message: str, status: int | None = None) -> None:
        super().__init__(redact(message))
        self.outcome = outcome
        self.status = status


def error_from_response(response: httpx.Response) -> GoogleApiError:
    """The error an unsuccessful answer describes, with Google's own message."""
    status = response.status_code
    detail = ""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts = [str(error.get(k)) for k in ("status", "message") if error.get(k)]
            detail = ": ".join(parts)
    if not detail:
        detail = response.text.strip().replace("\n", " ")[:200]
    message = f"HTTP {status}" + (f" {detail}" if detail else "")
    return GoogleApiError(outcome_of_status(status), message, status)


def error_from_exception(exc: Exception) -> GoogleApiError:
    """A transport failure (timeout, refused connection, TLS) as an outcome."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return GoogleApiError("timeout", f"no answer in time ({type(exc).__name__})")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return GoogleApiError("network", message)


def json_body(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GoogleApiError("invalid_response", "answer is not JSON") from None
    if not isinstance(body, dict):
        raise GoogleApiError("invalid_response", "answer is not a JSON object")
    return body


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter exponential backoff for 429 answers (treosh/crux-api waits 1-60 s)."""

    base: float = 1.0
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.cap, retry_after) * random.uniform(1.0, 1.2)
        return random.uniform(self.base / 2, min(self.cap, self.base * 2**attempt))


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


async def send_with_backoff(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    max_retries: int,
    deadline: float,
    backoff: Backoff,
    attempt_timeout: float | None = None,
    on_attempt: Callable[[str], None] | None = None,
) -> httpx.Response:
    """Send; on 429 wait and send again, up to ``max_retries`` times and never past
    ``deadline`` (``time.monotonic()``); other answers (400 included) are never retried.

    ``attempt_timeout`` bounds each whole attempt (httpx's timeouts are per read).
    Transport errors are raised as :class:`GoogleApiError`; the final answer, whatever
    its status, is returned. ``on_attempt`` is told each attempt's outcome.
    """
    attempt = 0
    while True:
        try:
            async with asyncio.timeout(attempt_timeout):
                response = await send()
        except (httpx.HTTPError, TimeoutError) as exc:
            error = error_from_exception(exc)
            if on_attempt is not None:
                on_attempt(error.outcome)
            raise error from None
        if on_attempt is not None:
            on_attempt(outcome_of_status(response.status_code))
        if response.status_code != 429 or attempt >= max_retries:
            return response
        delay = backoff.delay(attempt, retry_after_seconds(response))
        if time.monotonic() + delay >= deadline:
            return response
        attempt += 1
        await asyncio.sleep(delay)

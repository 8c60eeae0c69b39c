"""The receiver interface and the classification of delivery results."""

from __future__ import annotations

import email.utils
import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import httpx

from alerts.notify.events import Event
from alerts.receivers.config import HttpReceiverConfig
from monitor.kernel.redact import describe_error, redact, register_secret
from monitor.kernel.source import CheckResult

MAX_RETRY_AFTER = 3600.0


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    """Transient: try again later (network error, 5xx, 429)."""
    PERMANENT = "permanent"
    """The receiver refused the message for good: do not retry it."""


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    detail: str
    """Secret-free description, e.g. ``HTTP 410 channel_is_archived``."""
    status: int | None = None
    retry_after: float | None = None


class Receiver(ABC):
    name: str
    kind: str
    send_resolved: bool = True
    coalesce: bool = True
    """True: all due alerts go in one message; False: one request per alert."""
    min_interval: float = 0.0
    resend_interval: float | None = None
    """Re-send a firing alert at least this often, whatever the route says (Alertmanager
    resolves an alert that is not re-sent)."""

    @abstractmethod
    async def send(self, events: Sequence[Event]) -> Result: ...

    @abstractmethod
    async def probe(self) -> CheckResult:
        """Check the endpoint is reachable without sending an alert."""

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.kind}:{self.name}".encode()).hexdigest()[:16]

    def routing_key(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


class HttpReceiver(Receiver):
    """A receiver reached over HTTP with the shared client."""

    def __init__(
        self,
        name: str,
        config: HttpReceiverConfig,
        client: httpx.AsyncClient,
        secret_url: str | None = None,
    ) -> None:
        self.name = name
        self.send_resolved = config.send_resolved
        self.min_interval = config.min_interval
        self.timeout = config.timeout
        self._client = client
        if secret_url is not None:
            path = urlsplit(secret_url).path
            if len(path) >= 16:
                register_secret(path)  # the path alone is the credential in webhook URLs


def fingerprint_of(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or HTTP-date), capped at 1 h."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def classify_status(response: httpx.Response, reason: str = "") -> Result:
    """2xx delivered; 408, 429 and 5xx retried; any other 4xx permanent."""
    status = response.status_code
    detail = f"HTTP {status}" + (f" {reason}" if reason else "")
    if 200 <= status < 300:
        return Result(Outcome.DELIVERED, detail, status)
    if status in (408, 425, 429) or status >= 500:
        return Result(Outcome.RETRY, detail, status, retry_after(response.headers))
    return Result(Outcome.PERMANENT, detail, status)


def body_reason(response: httpx.Response, limit: int = 120) -> str:
    text = response.text.strip().replace("\n", " ")
    return redact(text[:limit])


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    seconds: float,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response | Result:
    """POST JSON; a transport failure comes back as a RETRY result (secret-free)."""
    try:
        return await client.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=seconds,
        )
    except httpx.TimeoutException:
        return Result(Outcome.RETRY, f"no answer within {seconds:g}s")
    except httpx.HTTPError as exc:
        return Result(Outcome.RETRY, describe_error(exc))


async def probe_http(
    client: httpx.AsyncClient, item: str, method: str, url: str, seconds: float, **kwargs: object
) -> httpx.Response | CheckResult:
    try:
        return await client.request(method, url, timeout=seconds, **kwargs)  # type: ignore[arg-type]
    except httpx.TimeoutException:
        return CheckResult(item, False, f"no answer within {seconds:g}s")
    except httpx.HTTPError as exc:
        return CheckResult(item, False, describe_error(exc))

"""POST one remote_write request and classify the answer as the protocol asks.

* 2xx: written.
* 429 and 5xx, timeouts and connection errors: *retry* the same request later (the
  receiver may ask for a delay with ``Retry-After``).
* any other 4xx (out-of-order or duplicate samples, a bad request, bad credentials):
  *rejected*; retrying would get the same answer, so the request is dropped
  (https://prometheus.io/docs/specs/remote_write_spec/#retries-backoff).

Error details are one line, secret-free (the push URL and credentials are secrets).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

import httpx

from monitor import __version__
from monitor.kernel.redact import describe_error, redact
from monitor.kernel.remote_write.config import RemoteWriteConfig
from monitor.kernel.remote_write.encode import HEADERS

_BODY_EXCERPT = 200


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    status_code: int | None
    detail: str
    retry_after: float | None = None


def endpoint_name(url: str) -> str:
    """``https://host/path`` without credentials or query (the query may hold a key)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class RemoteWriteClient:
    def __init__(
        self, config: RemoteWriteConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = config.url.get_secret_value()
        self.endpoint = endpoint_name(self.url)
        self._timeout = config.timeout
        headers = {
            **HEADERS,
            "User-Agent": f"app-monitor/{__version__}",
            **{k: v.get_secret_value() for k, v in config.headers.items()},
        }
        auth: httpx.Auth | None = None
        if config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"
        elif config.username is not None and config.password is not None:
            auth = httpx.BasicAuth(config.username, config.password.get_secret_value())
        self._client = httpx.AsyncClient(
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(config.timeout),
            transport=transport,
            follow_redirects=False,
        )

    async def send(self, body: bytes) -> Result:
        """One attempt, bounded by the configured timeout end to end."""
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(self.url, content=body)
        except TimeoutError:
            return Result(Outcome.RETRY, None, f"no answer within {self._timeout:g}s")
        except httpx.HTTPError as exc:
            return Result(Outcome.RETRY, None, describe_error(exc))
        code = response.status_code
        if 200 <= code < 300:
            return Result(Outcome.SENT, code, f"HTTP {code}")
        excerpt = " ".join(response.text[:_BODY_EXCERPT].split())
        detail = redact(f"HTTP {code}: {excerpt}" if excerpt else f"HTTP {code}")
        if code == 429 or code >= 500:
            return Result(
                Outcome.RETRY, code, detail, _retry_after(response.headers.get("retry-after"))
            )
        return Result(Outcome.REJECTED, code, detail)

    async def aclose(self) -> None:
        await self._client.aclose()

"""One HTTP probe: a GET or HEAD with a deadline, redirects, and checks on the answer.

Phases come from httpcore's trace extension, summed over redirects: ``connect``
(httpx resolves the name inside its TCP connect, so DNS time is part of it), ``tls``,
``processing`` (request sent until the response headers: time to first byte) and
``transfer`` (reading the body). A probe never raises: every failure is a result with
a reason.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from collectors.http_probe.cert import CertificateError, not_after
from collectors.http_probe.config import HttpProbeTarget
from monitor.kernel.redact import redact

FAILURE_REASONS = ("timeout", "connect", "tls", "redirects", "status", "body", "protocol")

_PHASE_EVENTS = {
    "connection.connect_tcp": "connect",
    "connection.start_tls": "tls",
}


@dataclass(slots=True)
class ProbeResult:
    success: bool
    duration: float
    status: int = 0
    reason: str | None = None
    """One of :data:`FAILURE_REASONS` when the probe failed."""
    detail: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    redirects: int = 0
    tls: bool = False
    cert_not_after: datetime | None = None


class _PhaseClock:
    """The trace callback: sums the duration of each phase over all hops."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def _add(self, phase: str, seconds: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        now = time.perf_counter()
        name, _, stage = event.rpartition(".")
        if name.endswith(".send_request_headers") and stage == "started":
            self._started["processing"] = now
        elif name.endswith(".receive_response_headers") and stage == "complete":
            if "processing" in self._started:
                self._add("processing", now - self._started.pop("processing"))
        elif name in _PHASE_EVENTS:
            phase = _PHASE_EVENTS[name]
            if stage == "started":
                self._started[phase] = now
            elif phase in self._started:
                self._add(phase, now - self._started.pop(phase))


def ssl_context(target: HttpProbeTarget) -> ssl.SSLContext:
    """The TLS context for ``target``, shared by every probe with the same TLS settings:
    loading the CA store takes ~50 ms (on the event loop) and ~1 MB per context."""
    return _shared_context(target.tls_verify, target.ca_file)


@functools.cache
def _shared_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_file is not None:
        return ssl.create_default_context(cafile=ca_file)
    return httpx.create_ssl_context()


def build_client(target: HttpProbeTarget) -> httpx.AsyncClient:
    """A client that opens a fresh connection per probe, so connect and TLS are measured."""
    return httpx.AsyncClient(
        verify=ssl_context(target),
        follow_redirects=target.max_redirects > 0,
        max_redirects=target.max_redirects,
        limits=httpx.Limits(max_keepalive_connections=0),
        timeout=target.timeout,
        headers={"User-Agent": "app-monitor (HTTP probe)"},
    )


def _cert_expiry(response: httpx.Response) -> datetime | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return not_after(der)
    except CertificateError:
        return None


def _is_tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc) or "SSL" in type(exc).__name__


def _classify(exc: Exception) -> str:
    if isinstance(exc, httpx.TooManyRedirects):
        return "redirects"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if _is_tls_error(exc):
        return "tls"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    return "protocol"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


async def probe(client: httpx.AsyncClient, target: HttpProbeTarget) -> ProbeResult:
    clock = _PhaseClock()
    started = time.perf_counter()
    result = ProbeResult(success=False, duration=0.0)
    try:
        async with asyncio.timeout(target.timeout):
            await _exchange(client, target, clock, result)
    except TimeoutError:
        result.reason, result.detail = "timeout", f"no answer within {target.timeout:g}s"
    except httpx.HTTPError as exc:
        result.reason, result.detail = _classify(exc), _describe(exc)
    except OSError as exc:
        result.reason, result.detail = "connect", _describe(exc)
    result.duration = time.perf_counter() - started
    result.phases = clock.phases
    if result.reason is None:
        result.success = True
    return result


async def _exchange(
    client: httpx.AsyncClient, target: HttpProbeTarget, clock: _PhaseClock, result: ProbeResult
) -> None:
    request = client.build_request(target.method, target.url, extensions={"trace": clock})
    response = await client.send(request, stream=True)
    try:
        result.status = response.status_code
        result.redirects = len(response.history)
        result.tls = response.url.scheme == "https"
        result.cert_not_after = _cert_expiry(response) if result.tls else None
        body = await _read_body(response, target, clock)
    finally:
        await response.aclose()
    expected = target.expected_status
    if (expected and result.status not in expected) or (
        not expected and not 200 <= result.status < 300
    ):
        want = ", ".join(map(str, expected)) if expected else "2xx"
        result.reason, result.detail = "status", f"HTTP {result.status}, expected {want}"
    elif target.body_contains is not None and target.body_contains.encode() not in body:
        result.reason = "body"
        result.detail = f"body does not contain {target.body_contains!r}"


async def _read_body(
    response: httpx.Response, target: HttpProbeTarget, clock: _PhaseClock
) -> bytes:
    started = time.perf_counter()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if target.body_contains is not None:
            chunks.append(chunk)
        size += len(chunk)
        if size >= target.max_body_bytes:
            break  # enough: the rest is neither searched nor timed
    clock.phases["transfer"] = time.perf_counter() - started
    return b"".join(chunks)[: target.max_body_bytes]

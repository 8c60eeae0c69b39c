"""A scriptable local HTTP(S) server for the CrUX, PSI and probe tests, and a harness
that runs collector jobs the way the daemon does.

A real server on 127.0.0.1 (stdlib ``ThreadingHTTPServer`` in a thread), so the
collectors' own HTTP clients, timeouts, redirects and TLS are exercised. Each route
answers with a sequence of :class:`Reply` values (the last one repeats) or a callable;
every request is recorded in :attr:`FakeServer.requests`.
"""

from __future__ import annotations

import json
import random
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support import parse_exposition

from monitor.kernel.exposition import Exposition
from monitor.kernel.runner import JobRunner
from monitor.kernel.snapshot import Snapshot
from monitor.kernel.snapshot_store import SnapshotStore
from monitor.kernel.source import CollectorJob


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    """bytes, str, or anything JSON-serialisable (sent as application/json)."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (a slow upstream)."""


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Reply | Callable[[Seen], Reply]


class FakeServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._routes: dict[tuple[str, str], list[Responder]] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                reply = fake._reply(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body
                headers = dict(reply.headers)
                if isinstance(payload, str):
                    payload = payload.encode()
                elif not isinstance(payload, bytes):
                    payload = json.dumps(payload).encode()
                    headers.setdefault("Content-Type", "application/json; charset=UTF-8")
                try:
                    self.send_response(reply.status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def route(self, method: str, path: str, *replies: Responder) -> None:
        with self._lock:
            self._routes[(method, path)] = list(replies)

    def _reply(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            replies = self._routes.get((seen.method, seen.path))
            if not replies:
                return Reply(404, {"error": {"code": 404, "message": "no such route"}})
            responder = replies.pop(0) if len(replies) > 1 else replies[0]
        return responder(seen) if callable(responder) else responder

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def self_signed_cert(directory: Path, days: int, openssl: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost valid for ``days`` days, and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            str(days),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[FakeServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FakeServer(tls=context) as server:
        yield server


class Harness:
    """Runs jobs through the real runner and store, and renders the real exposition."""

    def __init__(self) -> None:
        self.store = SnapshotStore()
        self.runner = JobRunner(self.store)
        self.exposition = Exposition(self.store)

    async def run(self, job: CollectorJob) -> Snapshot:
        return await self.runner.run(job)

    def parsed(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return parse_exposition(self.exposition.render().decode())


# --- answers in the documented shapes -------------------------------------------------

PAGE = "https://example.com/"


def daily_body(
    *,
    key: dict[str, str] | None = None,
    form_factor: str = "PHONE",
    lcp_p75: Any = 3000,
    cls_p75: Any = "0.05",
    inp: bool = False,
    last: tuple[int, int, int] = (2026, 2, 7),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A queryRecord answer shaped like the documented github.com/marketplace capture."""
    metrics: dict[str, Any] = {
        "largest_contentful_paint": {
            "histogram": [
                {"start": 0, "end": 2500, "density": 0.9343},
                {"start": 2500, "end": 4000, "density": 0.0418},
                {"start": 4000, "density": 0.0239},
            ],
            "percentiles": {"p75": lcp_p75},
        },
        "cumulative_layout_shift": {
            "histogram": [
                {"start": "0.00", "end": "0.10", "density": 0.9343},
                {"start": "0.10", "end": "0.25", "density": 0.0511},
                {"start": "0.25", "density": 0.0146},
            ],
            "percentiles": {"p75": cls_p75},
        },
        "navigation_types": {"fractions": {"navigate": 0.7618, "reload": 0.0104}},
        "largest_contentful_paint_image_time_to_first_byte": {"percentiles": {"p75": 838}},
    }
    if inp:
        metrics["interaction_to_next_paint"] = {
            "histogram": [
                {"start": 0, "end": 200, "density": 0.8},
                {"start": 200, "end": 500, "density": 0.15},
                {"start": 500, "density": 0.05},
            ],
            "percentiles": {"p75": 150},
        }
    metrics.update(extra or {})
    y, m, d = last
    return {
        "record": {
            "key": {"formFactor": form_factor, **(key or {"origin": "https://example.com"})},
            "metrics": metrics,
            "collectionPeriod": {
                "firstDate": {"year": 2026, "month": 1, "day": 11},
                "lastDate": {"year": y, "month": m, "day": d},
            },
        }
    }


def history_body(p75s: Sequence[Any], cls_p75s: Sequence[Any], periods: int = 25) -> dict[str, Any]:
    start = datetime(2025, 8, 17)
    collection = []
    for i in range(periods):
        first = start + timedelta(weeks=i)
        last = first + timedelta(days=27)
        collection.append(
            {
                "firstDate": {"year": first.year, "month": first.month, "day": first.day},
                "lastDate": {"year": last.year, "month": last.month, "day": last.day},
            }
        )
    nan_densities = ["NaN" if v is None else 0.8 for v in p75s]
    return {
        "record": {
            "key": {"origin": "https://example.com", "formFactor": "PHONE"},
            "metrics": {
                "largest_contentful_paint": {
                    "histogramTimeseries": [
                        {"start": 0, "end": 2500, "densities": nan_densities},
                        {"start": 2500, "end": 4000, "densities": [0.1] * periods},
                        {"start": 4000, "densities": [0.1] * periods},
                    ],
                    "percentilesTimeseries": {"p75s": list(p75s)},
                },
                "cumulative_layout_shift": {
                    "histogramTimeseries": [
                        {"start": "0.00", "end": "0.10", "densities": [0.9] * periods}
                    ],
                    "percentilesTimeseries": {"p75s": list(cls_p75s)},
                },
                "interaction_to_next_paint": {
                    "percentilesTimeseries": {"p75s": [None] * periods},
                },
                "navigation_types": {
                    "fractionTimeseries": {"navigate": {"fractions": ["NaN"] * periods}}
                },
            },
            "collectionPeriods": collection,
        }
    }


def psi_body(lcp_ms: float = 2400.0, score: float | None = 0.85, **extra: Any) -> dict[str, Any]:
    """A runPagespeed answer in the shape of the documented capture."""
    audits: dict[str, Any] = {
        "largest-contentful-paint": {
            "numericValue": lcp_ms,
            "numericUnit": "millisecond",
            "displayValue": "2,4\u00a0s",  # localised: never read
            "score": 0.9,
        },
        "first-contentful-paint": {"numericValue": 1200.5, "numericUnit": "millisecond"},
        "total-blocking-time": {"numericValue": 150, "numericUnit": "millisecond"},
        "speed-index": {"numericValue": 3100, "numericUnit": "millisecond"},
        "server-response-time": {"numericValue": 420, "numericUnit": "millisecond"},
        "cumulative-layout-shift": {
            "numericValue": 0.0006,
            "numericUnit": "unitless",
            "displayValue": "0.001",
        },
        "interactive": {"numericValue": "NaN", "numericUnit": "millisecond"},
    }
    return {
        "id": PAGE,
        "kind": "pagespeedonline#result",
        "analysisUTCTimestamp": "2026-02-09T10:00:00.000Z",
        "loadingExperience": {"initial_url": PAGE},
        "lighthouseResult": {
            "timing": {"total": 22398.2},
            "categories": {"performance": {"score": score}},
            "audits": audits,
            **extra,
        },
    }


ORIGIN = "https://shop.example.com"
"""The page origin the beacon tests send from."""


def lcp(value: Any = 2400, **fields: Any) -> dict[str, Any]:
    if "rating" not in fields:
        fields["rating"] = "good" if value <= 2500 else "needs-improvement"
    return {
        "name": "LCP",
        "value": value,
        "rating": fields.pop("rating"),
        "delta": value,
        "id": fields.pop("id", f"v5-1700000000000-{random.randrange(10**12, 10**13)}"),
        "navigationType": "navigate",
        "path": "/products/42",
        **fields,
    }

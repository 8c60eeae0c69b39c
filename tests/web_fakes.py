"""A scriptable local HTTP(S) server for the CrUX, PSI and probe tests, and a harness
that runs collector jobs the way the daemon does.

A real server on 127.0.0.1 (stdlib ``ThreadingHTTPServer`` in a thread), so the
collectors' own HTTP clients, timeouts, redirects and TLS are exercised. Each route
answers with a sequence of :class:`Reply` values (the last one repeats) or a callable;
every request is recorded in :attr:`FakeServer.requests`.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support import parse_exposition

from collectors.base import CollectorJob
from monitor.exposition import Exposition
from monitor.runner import JobRunner
from monitor.snapshot import Snapshot
from monitor.store import SnapshotStore


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

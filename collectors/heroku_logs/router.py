"""Heroku router lines (legacy and Router 2.0) -> request counters and latency histograms.

Fields used: ``method``, ``path`` (only through the route patterns), ``status``,
``connect``, ``service``, ``bytes``, ``code``. A ``code=`` marks a router error whatever
``at=`` says (H27 is ``at=warning``, H81 ``at=info``); ``sock=`` may come first; values
may be empty (``connect= service= bytes=``) or quoted with spaces. ``request_id``,
``fwd``, ``host``, ``dyno`` and the raw path are never labels. Router 2.0's
``protocol=http2.0 tls=true tls_version=tls1.3`` are read but not labels either.
"""

from __future__ import annotations

import re

from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.kv import KV
from collectors.rum.routes import OTHER, RouteMatcher

METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
_CODE = re.compile(r"^[HR]\d{1,3}$")
STATUS_CLASSES = {str(d): f"{d}xx" for d in range(1, 6)}


class RouterParser:
    def __init__(self, state: DrainState, routes: RouteMatcher) -> None:
        self._state = state
        self._routes = routes if routes.patterns else None

    def route(self, path: str) -> str:
        if self._routes is None:
            return OTHER
        if path.startswith('"'):
            path = path[1:-1]
        return self._routes.route(path.split("?", 1)[0])

    def parse(self, app: str, message: str, now: float) -> bool:
        """Record one router line; False when it has no usable status."""
        f = dict(KV.findall(message))
        status = f.get("status", "")
        if len(status) != 3 or not status.isdigit():
            return False
        method = f.get("method", "")
        if method not in METHODS:
            method = "other"
        service_ms = f.get("service", "")
        connect_ms = f.get("connect", "")
        size = f.get("bytes", "")
        code = f.get("code")
        if code is not None and not _CODE.match(code):
            code = "other"
        self._state.record_request(
            app,
            method,
            STATUS_CLASSES.get(status[0], "other"),
            self.route(f.get("path", "")),
            float(service_ms[:-2]) / 1000.0 if service_ms.endswith("ms") else None,
            float(connect_ms[:-2]) / 1000.0 if connect_ms.endswith("ms") else None,
            float(size) if size.isdigit() else 0.0,
            code,
            now,
        )
        return True

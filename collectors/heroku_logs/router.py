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
        return self._routes.route(path.split("?", 1)[0])

    def parse(self, app: str, message: str, now: float) -> bool:
        """Record one router line; False when it has no usable status."""
        fields = fast_fields(message)
        if fields is None:
            fields = slow_fields(message)
            if fields is None:
                return False
        method, path, connect_ms, service_ms, status, size, code = fields
        if method not in METHODS:
            method = "other"
        if code is not None and not _CODE.match(code):
            code = "other"
        self._state.record_request(
            app,
            method,
            STATUS_CLASSES.get(status[0], "other"),
            self.route(path),
            float(service_ms[:-2]) / 1000.0 if service_ms.endswith("ms") else None,
            float(connect_ms[:-2]) / 1000.0 if connect_ms.endswith("ms") else None,
            float(size) if size.isdigit() else 0.0,
            code,
            now,
        )
        return True


Fields = tuple[str, str, str, str, str, str, str | None]
"""method, path, connect, service, status, bytes, code."""


_HEAD = re.compile(r'method=(\S*) path=("[^"]*"|\S*)')
_TAIL = re.compile(r" connect=(\S*) service=(\S*) status=(\d{3}) bytes=(\S*)")
_CODE_FIELD = re.compile(r"(?:^| )code=(\S*)")


def fast_fields(message: str) -> Fields | None:
    """The fields of the usual shape, by two anchored patterns: ``method= path=`` and,
    after the path's end (so nothing inside a quoted path can pass for a field),
    ``connect= service= status= bytes=``; ``code=`` only before ``method=``. None when
    the line has another shape; :func:`slow_fields` reads those."""
    head = _HEAD.search(message)
    if head is None:
        return None
    tail = _TAIL.search(message, head.end())
    if tail is None:
        return None
    code = None
    start = head.start()
    if "code=" in message[:start]:
        found = _CODE_FIELD.search(message, 0, start)
        code = found[1] if found is not None else None
    path = head[2]
    if path.startswith('"'):
        path = path[1:-1]
    return head[1], path, tail[1], tail[2], tail[3], tail[4], code


def slow_fields(message: str) -> Fields | None:
    f = dict(KV.findall(message))
    status = f.get("status", "")
    if len(status) != 3 or not status.isdigit():
        return None
    path = f.get("path", "")
    if path.startswith('"'):
        path = path[1:-1]
    return (
        f.get("method", ""),
        path,
        f.get("connect", ""),
        f.get("service", ""),
        status,
        f.get("bytes", ""),
        f.get("code"),
    )

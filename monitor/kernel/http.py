"""The daemon's HTTP endpoints (Starlette): /metrics, /healthz, and routes added by
other parts (/alerts, /vitals).

``/metrics`` renders cached exposition text (no I/O), negotiates the format
(:mod:`monitor.kernel.negotiation`) and gzip,
and requires the configured bearer token or basic credentials (constant-time compare).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

from pydantic import SecretStr, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from monitor import __version__
from monitor.kernel.config.types import ListenAddress, Model, parse_listen
from monitor.kernel.exposition import Exposition
from monitor.kernel.negotiation import negotiate
from monitor.kernel.snapshot_store import SnapshotStore


class HttpConfig(Model):
    """The daemon's own HTTP server (/metrics, /healthz, /alerts, /vitals)."""

    listen: ListenAddress = "0.0.0.0:9187"
    auth_token: SecretStr | None = None
    """Bearer token required on /metrics and /alerts when set."""
    username: str | None = None
    password: SecretStr | None = None
    """HTTP basic auth on /metrics and /alerts when both are set."""
    public_read_only: bool = False
    """Say so explicitly to serve /metrics, /alerts and /healthz/detail with no credentials
    on a public address (a Heroku web dyno refuses to start otherwise). State-changing
    endpoints never run without credentials, whatever this says."""

    @model_validator(mode="after")
    def _basic_pair(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be set together for basic auth")
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_listen(self.listen)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def has_credentials(config: HttpConfig) -> bool:
    return config.auth_token is not None or config.password is not None


def exposure_warning(config: HttpConfig) -> str | None:
    """A warning when anyone who can reach the listen address reads without credentials."""
    host, _ = config.host_port
    if has_credentials(config) or is_loopback(host):
        return None
    if config.public_read_only:
        return (
            f"listening on {config.listen} with no credentials (http.public_read_only): "
            "/metrics and /alerts are public; silences cannot be changed over HTTP"
        )
    return (
        f"listening on {config.listen} with no credentials: anyone who can reach it reads "
        "/metrics and /alerts; set METRICS_AUTH_TOKEN (http.auth_token) or basic auth, "
        "or listen on 127.0.0.1"
    )


def heroku_web_refusal(config: HttpConfig, environ: Mapping[str, str]) -> str | None:
    """Why a Heroku web dyno must not start: it is on the internet, and nothing is set."""
    on_web_dyno = environ.get("DYNO", "").startswith("web.") and "PORT" in environ
    if not on_web_dyno or has_credentials(config) or config.public_read_only:
        return None
    return (
        "refusing to serve a Heroku web dyno with no credentials: run "
        "`heroku config:set METRICS_AUTH_TOKEN=$(openssl rand -hex 32)`, or set "
        "http.public_read_only: true (MONITOR_PUBLIC_READ_ONLY=1) to make /metrics and "
        "/alerts public on purpose"
    )


class Authenticator:
    """Checks ``Authorization`` against the configured bearer token and/or basic pair."""

    def __init__(self, config: HttpConfig) -> None:
        self._token = config.auth_token.get_secret_value().encode() if config.auth_token else None
        self._basic = (
            (
                (config.username or "").encode(),
                config.password.get_secret_value().encode(),
            )
            if config.password is not None
            else None
        )

    @property
    def required(self) -> bool:
        return self._token is not None or self._basic is not None

    def allows(self, request: Request) -> bool:
        if not self.required:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self._token is not None:
            return hmac.compare_digest(credentials.strip().encode(), self._token)
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True)
            except (binascii.Error, ValueError):
                return False
            user, sep, password = decoded.partition(b":")
            if not sep:
                return False
            if self._basic is not None:
                ok_user = hmac.compare_digest(user, self._basic[0])
                ok_pw = hmac.compare_digest(password, self._basic[1])
                if ok_user and ok_pw:
                    return True
            # Grafana Cloud's Metrics Endpoint sends the token as a basic-auth password
            if self._token is not None:
                return hmac.compare_digest(password, self._token)
        return False

    def identity(self, request: Request) -> str:
        """Who made an allowed request, for the log: the basic-auth user or "token",
        and the peer address (never the credential)."""
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        who = "anonymous"
        if scheme.lower() == "bearer":
            who = "token"
        elif scheme.lower() == "basic":
            try:
                user = base64.b64decode(credentials.strip(), validate=True).partition(b":")[0]
                who = "basic:" + user.decode("utf-8", "replace")[:64]
            except (binascii.Error, ValueError):
                who = "basic"
        peer = request.client.host if request.client else "unknown"
        return f"{who}@{peer}"

    def challenge(self) -> Response:
        return Response(
            "unauthorized\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="app-monitor", Basic realm="app-monitor"'},
            media_type="text/plain",
        )


def forbidden_without_credentials(what: str) -> Response:
    """The answer of an endpoint that needs credentials when none are configured."""
    return Response(
        f"{what} needs credentials and none are configured: set METRICS_AUTH_TOKEN "
        "(http.auth_token) or http.username/http.password\n",
        status_code=403,
        media_type="text/plain",
    )


async def read_capped(request: Request, max_bytes: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``max_bytes`` (by its
    ``Content-Length`` or while reading): a huge body is never held in memory."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)


async def read_json_change(
    request: Request, auth: Authenticator, what: str, max_bytes: int = 65536
) -> Any:
    """The JSON body of a state-changing request, or the Response refusing it.

    Refused: no credentials configured (403: nobody may change state), wrong or missing
    credentials (401), a media type other than ``application/json`` (415: a cross-site
    form or ``text/plain`` post is a "simple" request browsers send without asking),
    a body over ``max_bytes`` (413) and malformed JSON (400).
    """
    if not auth.required:
        return forbidden_without_credentials(what)
    if not auth.allows(request):
        return auth.challenge()
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        return _plain(415, f"{what} takes Content-Type: application/json")
    body = await read_capped(request, max_bytes)
    if body is None:
        return _plain(413, f"{what}: body larger than {max_bytes} bytes")
    try:
        return json.loads(body)
    except ValueError:
        return _plain(400, f"{what}: body is not valid JSON")


def _plain(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def wants_gzip(accept_encoding: str) -> bool:
    """True if ``Accept-Encoding`` admits gzip with a non-zero quality."""
    for part in accept_encoding.split(","):
        token, _, params = part.partition(";")
        if token.strip().lower() not in ("gzip", "*"):
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            return True
    return False


class MetricsEndpoint:
    def __init__(self, exposition: Exposition, auth: Authenticator) -> None:
        self._exposition = exposition
        self._auth = auth

    async def handle(self, request: Request) -> Response:
        if not self._auth.allows(request):
            return self._auth.challenge()
        fmt = negotiate(request.headers.get("accept"))
        compressed = wants_gzip(request.headers.get("accept-encoding", ""))
        body = await self._exposition.render_async(fmt.openmetrics, compressed)
        headers = {"Vary": "Accept, Accept-Encoding", "Cache-Control": "no-store"}
        if compressed:
            headers["Content-Encoding"] = "gzip"
        return Response(body, headers=headers, media_type=fmt.content_type)


def build_app(
    *,
    exposition: Exposition,
    store: SnapshotStore,
    http_config: HttpConfig,
    is_running: Callable[[], bool],
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    auth = Authenticator(http_config)

    warning = exposure_warning(http_config)

    async def healthz(request: Request) -> Response:
        """Status only, for platform health checks: no names, hosts or error text."""
        running = is_running()
        statuses = store.statuses()
        up = sum(1 for st in statuses if st.up)
        body: dict[str, Any] = {
            "status": "ok" if running else "stopped",
            "version": __version__,
            "collectors": {"up": up, "down": len(statuses) - up},
        }
        if warning:
            body["warnings"] = [warning]
        return JSONResponse(body, status_code=200 if running else 503)

    async def healthz_detail(request: Request) -> Response:
        """Each collector's last success and error: hosts, users and TLS errors, so only
        with credentials (or when the read-only endpoints are public on purpose)."""
        if not auth.required and not http_config.public_read_only:
            return forbidden_without_credentials("/healthz/detail")
        if not auth.allows(request):
            return auth.challenge()
        collectors: list[dict[str, Any]] = [
            {
                "collector": st.collector,
                "target": st.target,
                "up": st.up,
                "last_success": st.last_success,
                "last_error": st.last_error,
            }
            for st in store.statuses()
        ]
        return JSONResponse(
            {"status": "ok" if is_running() else "stopped", "collectors": collectors}
        )

    routes: list[BaseRoute] = [
        Route("/metrics", MetricsEndpoint(exposition, auth).handle, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/healthz/detail", healthz_detail, methods=["GET"]),
        *extra_routes,
    ]
    app = Starlette(routes=routes)
    app.state.authenticator = auth
    return app


class DirectRoutes:
    """ASGI: requests for the exact path of a plain route go straight to its handler.

    Starlette tries each route's pattern in turn and passes every request through its
    error and exception layers: about a third of the daemon's CPU per beacon when
    thousands of browsers report each second. A route without path parameters whose
    method matches is answered by its own ASGI app here (the same handler, the same
    exception handling); anything else (other methods, unknown paths) by ``app``.
    """

    def __init__(self, app: Starlette) -> None:
        self._app = app
        self._direct: dict[str, Route] = {
            route.path: route
            for route in app.routes
            if isinstance(route, Route) and not route.param_convertors
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._direct.get(scope["path"])
            if route is not None and (route.methods is None or scope["method"] in route.methods):
                scope["app"] = self._app
                await route.app(scope, receive, send)
                return
        await self._app(scope, receive, send)

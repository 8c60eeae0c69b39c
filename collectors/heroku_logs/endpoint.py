"""``POST /logs`` and ``POST /logs/{app}``: checks in order of cost, then ingestion.

1. a drain credential configured, else 403 saying how to enable one;
2. the credential (basic-auth password in the drain URL, any user name, and/or a
   ``Logplex-Drain-Token`` on the allow-list), else 401;
3. the app name (``/logs/{app}``, ``?app=`` or ``log_drain.default_app``), else 400;
4. ``Content-Type: application/logplex-1``, else 415;
5. overload (``max_concurrent`` requests being read), 429 + ``Retry-After``: the one
   refusal Logplex retries, so the batch is not lost;
6. body size, by ``Content-Length`` and while reading, else 413;
7. ``Logplex-Frame-Id`` seen before: a retry; only L10 notices new in it are counted.

Then 204, whatever the lines said: Logplex drops a batch for good on a 4xx, so a bad
line is counted (``heroku_drain_lines_total{outcome="malformed"}``), never refused.
Frame id and drain token headers are optional (Private Space drains send neither).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections import Counter
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from collectors.heroku_logs.config import APP_NAME, LogDrainConfig
from collectors.heroku_logs.dedupe import FrameIds
from collectors.heroku_logs.ingest import Ingestor
from monitor.kernel.http import read_capped

MEDIA_TYPE = "application/logplex-1"
REQUEST_OUTCOMES = (
    "accepted",
    "duplicate",
    "disabled",
    "unauthorized",
    "bad_app",
    "app_limit",
    "unsupported_media_type",
    "overloaded",
    "too_large",
    "disconnected",
)
DISABLED_TEXT = (
    "log drain disabled: set LOG_DRAIN_PASSWORD (log_drain.password in the config file), "
    "then add the drain with: heroku drains:add "
    "'https://drain:<password>@<this host>/logs/<app>' -a <app>\n"
)


class DrainCredential:
    """The drain's own credential, separate from the metrics token."""

    def __init__(self, config: LogDrainConfig) -> None:
        self._password = config.password.get_secret_value().encode() if config.password else None
        self._tokens = tuple(t.encode() for t in config.drain_tokens)

    @property
    def configured(self) -> bool:
        return self._password is not None or bool(self._tokens)

    def _password_ok(self, header: str) -> bool:
        assert self._password is not None
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        _, sep, password = decoded.partition(b":")
        return bool(sep) and hmac.compare_digest(password, self._password)

    def _token_ok(self, token: str | None) -> bool:
        if token is None:
            return False
        given = token.strip().encode()
        ok = False
        for allowed in self._tokens:
            ok |= hmac.compare_digest(given, allowed)
        return ok

    def allows(self, authorization: str, token: str | None) -> bool:
        if self._password is not None and not self._password_ok(authorization):
            return False
        return not self._tokens or self._token_ok(token)


class DrainEndpoint:
    def __init__(
        self,
        config: LogDrainConfig,
        ingestor: Ingestor,
        *,
        on_change: Callable[[], None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.ingestor = ingestor
        self.state = ingestor.state
        self.credential = DrainCredential(config)
        self.frame_ids = FrameIds(config.dedupe_window, config.dedupe_max)
        self.in_flight = 0
        self.last_frames = 0
        self.apps: set[str] = set()
        self._on_change = on_change
        self._monotonic = monotonic
        self._clock = clock

    @property
    def requests(self) -> Counter[str]:
        return self.state.requests

    def _refuse(self, outcome: str, status: int, text: str) -> Response:
        self.requests[outcome] += 1
        self._on_change()
        return Response(text, status, media_type="text/plain")

    def _app(self, request: Request) -> str | None:
        app = request.path_params.get("app") or request.query_params.get("app")
        if app is None:
            app = self.config.default_app
        if app is None or not APP_NAME.match(app):
            return None
        return app

    async def handle(self, request: Request) -> Response:
        if not self.credential.configured:
            return self._refuse("disabled", 403, DISABLED_TEXT)
        headers = request.headers
        token = headers.get("logplex-drain-token")
        if not self.credential.allows(headers.get("authorization", ""), token):
            response = self._refuse("unauthorized", 401, "unauthorized\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="app-monitor log drain"'
            return response
        app = self._app(request)
        if app is None:
            return self._refuse(
                "bad_app", 400, "name the app: POST /logs/<app> (or set log_drain.default_app)\n"
            )
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != MEDIA_TYPE:
            return self._refuse("unsupported_media_type", 415, f"expected {MEDIA_TYPE}\n")
        if self.in_flight >= self.config.max_concurrent:
            response = self._refuse("overloaded", 429, "overloaded, retry\n")
            response.headers["Retry-After"] = "1"
            return response
        self.in_flight += 1
        try:
            body = await read_capped(request, self.config.max_body_bytes)
        except ClientDisconnect:
            self.requests["disconnected"] += 1
            return Response(status_code=400)
        finally:
            self.in_flight -= 1
        if body is None:
            return self._refuse("too_large", 413, "body too large\n")
        response = self._ingest(app, body, headers.get("logplex-frame-id"), token)
        declared_count = headers.get("logplex-msg-count", "")
        if declared_count.isdigit() and int(declared_count) != self.last_frames:
            self.state.count_mismatches[app] += 1
        return response

    def _ingest(self, app: str, body: bytes, frame_id: str | None, token: str | None) -> Response:
        now = self._monotonic()
        state = self.state
        if app not in self.apps:
            if len(self.apps) >= self.config.max_apps:
                self.requests["app_limit"] += 1
                self._on_change()
                return Response(status_code=204)  # a 4xx would make Logplex drop it anyway
            self.apps.add(app)
        key = (token or app, frame_id[:64]) if frame_id else None
        counted = self.frame_ids.get(key, now) if key is not None else None
        result = self.ingestor.ingest(app, body, now, counted_l10=counted)
        self.last_frames = result.frames
        if key is not None:
            self.frame_ids.add(key, now, result.l10)
        self.requests["duplicate" if counted is not None else "accepted"] += 1
        state.last_frame[app] = self._clock()
        self._on_change()
        return Response(status_code=204)

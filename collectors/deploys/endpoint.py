"""``POST /deploys``: a deploy marker from CI or a script.

Needs the metrics credentials (bearer token or basic auth; 403 saying how to set them
when none are configured) and ``Content-Type: application/json``. Body
``{"app": "shop", "version": "v124", "commit": "60a874b3", "description": "..."}``
(``app`` may be left out when ``HEROKU_APP_NAME``/``log_drain.default_app`` names it).

Answers: 201 recorded; 400 bad JSON or field (the message says which); 401; 403; 413
over 16 KiB; 415 another content type; 503 the state database is unreachable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collectors.deploys.markers import MarkerError, marker
from collectors.deploys.store import DeployStore
from collectors.heroku_logs.release_log import ReleaseLogError
from monitor.kernel.http import Authenticator, read_json_change

BODY_MAX = 16 * 1024
STORE_TIMEOUT = 10.0


class DeployEndpoint:
    def __init__(
        self,
        auth: Authenticator,
        store: DeployStore,
        default_app: str | None,
        on_marker: Callable[[], None] = lambda: None,
    ) -> None:
        self._auth = auth
        self._store = store
        self._default_app = default_app
        self._on_marker = on_marker

    async def handle(self, request: Request) -> Response:
        doc = await read_json_change(request, self._auth, "POST /deploys", BODY_MAX)
        if isinstance(doc, Response):
            return doc
        if not isinstance(doc, dict):
            return _error(400, "body must be a JSON object")
        unknown = set(doc) - {"app", "version", "commit", "description"}
        if unknown:
            return _error(400, f"unknown fields: {', '.join(sorted(unknown))[:200]}")
        try:
            event = marker(
                doc.get("app") or self._default_app,
                doc.get("version"),
                commit=doc.get("commit"),
                description=doc.get("description"),
            )
        except MarkerError as exc:
            return _error(400, str(exc))
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                await self._store.record(event)
        except (ReleaseLogError, TimeoutError):
            return _error(503, "the state database is unreachable; try again")
        self._on_marker()
        return JSONResponse(
            {"app": event.app, "version": f"v{event.version}", "recorded": True}, status_code=201
        )


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)

"""Optional Sentry error reporting, on only when ``SENTRY_DSN`` is set.

Events are scrubbed by :func:`scrub_event` before they leave the process: credentials in
URLs, registered secrets (passwords, tokens, webhook URLs, routing keys) anywhere in
messages, exception values, breadcrumbs and extra data. Local variables are never sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from monitor import __version__
from monitor.kernel.redact import redact


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub(v) for v in value)
    return value


def scrub_event(event: Any, hint: Any = None) -> Any:
    """Sentry ``before_send`` / ``before_breadcrumb`` hook."""
    return _scrub(event)


def release_from_env(environ: Mapping[str, str]) -> str:
    """SENTRY_RELEASE, else the Heroku build commit, else the package version."""
    for key in ("SENTRY_RELEASE", "HEROKU_BUILD_COMMIT", "HEROKU_SLUG_COMMIT", "SOURCE_VERSION"):
        if environ.get(key):
            return environ[key]
    return f"app-monitor@{__version__}"


def init_sentry(environ: Mapping[str, str] | None = None) -> bool:
    """Initialise sentry-sdk if SENTRY_DSN is set; returns whether it did.

    Call from inside the running event loop so the asyncio integration sees it.
    """
    environ = os.environ if environ is None else environ
    dsn = environ.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.asyncio import AsyncioIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        release=release_from_env(environ),
        environment=environ.get("SENTRY_ENVIRONMENT", "production"),
        include_local_variables=False,
        before_send=scrub_event,
        before_breadcrumb=scrub_event,
        integrations=[AsyncioIntegration(), LoggingIntegration(event_level=None)],
    )
    return True

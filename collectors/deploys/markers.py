"""Deploy markers: what a deploy is, however it became known.

A marker is a :class:`~collectors.heroku_logs.releases.ReleaseEvent`, stored in the
drain's release log (table ``heroku_releases`` in the state database), so a release seen
on the drain, marked by ``monitor deploy mark``, posted to ``POST /deploys`` and read
from the dyno metadata at start is one row, deduplicated by (app, version); a later
source only fills in what the first lacked (commit, description).

Versions are Heroku release numbers (``v123`` or ``123``): the comparison needs their
order and the rollback the previous one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime

from collectors.heroku_logs.releases import ReleaseEvent, strip_user

_VERSION = re.compile(r"^v?([0-9]{1,9})$")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_APP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
DESCRIPTION_MAX = 200


class MarkerError(ValueError):
    """Bad input: the message says which field and why (exit code 2, HTTP 400)."""


def parse_version(value: object) -> int:
    text = str(value).strip() if isinstance(value, str | int) else ""
    m = _VERSION.match(text)
    if m is None or int(m[1]) == 0:
        raise MarkerError("version must be a Heroku release number such as v123")
    return int(m[1])


def marker(
    app: object,
    version: object,
    *,
    commit: object = None,
    description: object = None,
    at: float | None = None,
) -> ReleaseEvent:
    """A validated marker (``MarkerError`` on bad input); ``at`` defaults to now."""
    if not isinstance(app, str) or not _APP.match(app):
        raise MarkerError("app must be an app name (letters, digits, '-', '_', '.')")
    number = parse_version(version)
    sha = ""
    if commit not in (None, ""):
        if not isinstance(commit, str) or not _COMMIT.match(commit.strip().lower()):
            raise MarkerError("commit must be a git SHA (7 to 40 hex digits)")
        sha = commit.strip().lower()
    text = ""
    if description not in (None, ""):
        if not isinstance(description, str):
            raise MarkerError("description must be a string")
        text = strip_user("".join(ch for ch in description if ch.isprintable()))
        text = text[:DESCRIPTION_MAX]
    return ReleaseEvent(
        app=app,
        version=number,
        released_at=time.time() if at is None else at,
        kind="deploy" if sha else "release",
        commit=sha,
        description=text,
    )


def from_dyno_metadata(environ: Mapping[str, str], default_app: str | None) -> ReleaseEvent | None:
    """The release this dyno runs, from Heroku's dyno metadata (``heroku labs:enable
    runtime-dyno-metadata``): ``HEROKU_RELEASE_VERSION``, ``HEROKU_SLUG_COMMIT``,
    ``HEROKU_RELEASE_CREATED_AT``, ``HEROKU_APP_NAME``. None when absent or invalid."""
    version = environ.get("HEROKU_RELEASE_VERSION")
    app = environ.get("HEROKU_APP_NAME") or default_app
    if not version or not app:
        return None
    at = None
    created = environ.get("HEROKU_RELEASE_CREATED_AT")
    if created:
        try:
            at = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        except ValueError:
            at = None
    try:
        return marker(app, version, commit=environ.get("HEROKU_SLUG_COMMIT"), at=at)
    except MarkerError:
        return None

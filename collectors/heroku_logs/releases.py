"""Platform API lines (APP-NAME ``app``, PROCID ``api``): releases and the events that
make them.

* ``Deploy 60a874b3 by user ...`` then ``Release v123 created by user ...`` at the same
  timestamp: a deploy of that commit (the two may come in either order);
* ``Set X config vars`` / ``Remove X config vars``, then a release: a config release;
* ``Rollback to v7``, then a release: a rollback;
* ``Scaled to ...``, ``Build started``/``succeeded``/``failed``, ``Enable Logplex``: counted.

Releases are deduplicated by version (Logplex repeats lines). User e-mails are never
kept: the text after `` by user `` is cut before anything is stored or counted.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.syslog import parse_timestamp

_RELEASE = re.compile(r"^Release v(\d{1,9}) created")
_DEPLOY = re.compile(r"^Deploy ([0-9a-f]{7,40})\b")
_ROLLBACK = re.compile(r"^Rollback to v(\d{1,9})")
_CONFIG = re.compile(r"^(?:Set|Remove|Update) (.{1,200}?) config vars?")
PAIR_SECONDS = 5.0
"""A Deploy/config/rollback line pairs with a release this close in log time."""
KEEP_VERSIONS = 200
"""Versions remembered per app for de-duplication (older ones come from the log)."""
EVENT_KINDS = (
    "release",
    "deploy",
    "config",
    "rollback",
    "scale",
    "build_started",
    "build_succeeded",
    "build_failed",
    "other",
)


@dataclass(frozen=True, slots=True)
class ReleaseEvent:
    app: str
    version: int
    released_at: float
    """Unix time of the ``Release vN created`` line."""
    kind: str = "release"
    """``deploy``, ``config``, ``rollback`` or ``release`` (nothing paired with it)."""
    commit: str = ""
    description: str = ""


@dataclass(slots=True)
class _Cause:
    at: float
    kind: str
    commit: str = ""
    description: str = ""


def strip_user(message: str) -> str:
    """The message without `` by user <email>`` (e-mails are personal data)."""
    head, sep, _ = message.partition(" by user ")
    return head if sep else message


class ReleaseParser:
    def __init__(
        self,
        state: DrainState,
        on_release: Callable[[ReleaseEvent], None],
    ) -> None:
        self._state = state
        self._on_release = on_release
        self._causes: dict[str, _Cause] = {}
        self.latest: dict[str, ReleaseEvent] = {}
        self._seen: dict[str, OrderedDict[int, ReleaseEvent]] = {}

    def remember(self, event: ReleaseEvent) -> None:
        """A release already stored (loaded at start): known, and the latest if newer."""
        seen = self._seen.setdefault(event.app, OrderedDict())
        seen[event.version] = event
        while len(seen) > KEEP_VERSIONS:
            seen.popitem(last=False)
        current = self.latest.get(event.app)
        if current is None or event.version >= current.version:
            self.latest[event.app] = event

    def parse(self, app: str, timestamp: str, message: str) -> bool:
        text = strip_user(message)
        at = parse_timestamp(timestamp)
        if at is None:
            return False
        m = _RELEASE.match(text)
        if m is not None:
            self._release(app, int(m[1]), at)
            self._count(app, "release")
            return True
        m = _DEPLOY.match(text)
        if m is not None:
            self._cause(app, _Cause(at, "deploy", commit=m[1], description=text))
            self._count(app, "deploy")
            return True
        m = _ROLLBACK.match(text)
        if m is not None:
            self._cause(app, _Cause(at, "rollback", description=text))
            self._count(app, "rollback")
            return True
        m = _CONFIG.match(text)
        if m is not None:
            self._cause(app, _Cause(at, "config", description=text))
            self._count(app, "config")
            return True
        if text.startswith("Scaled to "):
            self._count(app, "scale")
        elif text == "Build started":
            self._count(app, "build_started")
        elif text == "Build succeeded":
            self._count(app, "build_succeeded")
        elif text.startswith("Build failed"):
            self._count(app, "build_failed")
        else:
            self._count(app, "other")
        return True

    def _count(self, app: str, kind: str) -> None:
        self._state.bump(self._state.platform_events, (app, kind))

    def _cause(self, app: str, cause: _Cause) -> None:
        # the release line may have come first (same timestamp): complete it
        latest = self.latest.get(app)
        if (
            latest is not None
            and latest.kind == "release"
            and abs(latest.released_at - cause.at) <= PAIR_SECONDS
        ):
            self._emit(self._with_cause(latest, cause))
            return
        self._causes[app] = cause

    @staticmethod
    def _with_cause(event: ReleaseEvent, cause: _Cause) -> ReleaseEvent:
        return ReleaseEvent(
            app=event.app,
            version=event.version,
            released_at=event.released_at,
            kind=cause.kind,
            commit=cause.commit,
            description=cause.description,
        )

    def _release(self, app: str, version: int, at: float) -> None:
        seen = self._seen.get(app)
        if seen is not None and version in seen:
            return  # Logplex repeats lines; one release per version
        event = ReleaseEvent(app=app, version=version, released_at=at)
        cause = self._causes.pop(app, None)
        if cause is not None and abs(cause.at - at) <= PAIR_SECONDS:
            event = self._with_cause(event, cause)
        self._emit(event)

    def _emit(self, event: ReleaseEvent) -> None:
        self.remember(event)
        self._on_release(event)

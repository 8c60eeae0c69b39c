"""Setup and privilege problems of one target, logged once and listed by ``monitor check``.

A monitoring role without ``pg_monitor`` sees NULLs instead of errors (other sessions'
state, standbys' LSNs, other users' queryids). Rather than export misleading zeros, the
collectors leave those series out and report the reason here: once in the log when it
first appears (and again only if it went away and came back), and as a warning line of
``monitor check``.
"""

from __future__ import annotations

import structlog

log = structlog.get_logger("collectors.postgres")

READ_ALL_STATS_SQL = "pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')"
"""SQL expression: can this role see every session's details (pg_monitor includes it)."""


class Notices:
    """Warnings of one PostgreSQL target, keyed so each is logged once."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._active: dict[str, str] = {}

    def warn(self, key: str, message: str) -> None:
        """Record a problem; log it unless it is already known."""
        if self._active.get(key) == message:
            return
        self._active[key] = message
        log.warning(message, target=self.target, check=key)

    def clear(self, key: str) -> None:
        """The problem ``key`` is gone (e.g. the role was granted pg_monitor)."""
        if self._active.pop(key, None) is not None:
            log.info("postgres problem resolved", target=self.target, check=key)

    def privilege(self, key: str, granted: bool, what: str) -> bool:
        """Warn (``what`` is hidden) unless ``granted``; returns ``granted``."""
        if granted:
            self.clear(key)
        else:
            self.warn(key, missing_privilege(what))
        return granted

    def messages(self) -> list[str]:
        return list(self._active.values())


def missing_privilege(what: str) -> str:
    return (
        f"the monitoring role lacks pg_monitor (pg_read_all_stats): {what} "
        "(GRANT pg_monitor TO <role>; see deploy/sql/monitoring-role.sql)"
    )

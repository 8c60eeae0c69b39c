"""Map a page path to a route label from the configured patterns, never the raw path.

Patterns: ``/products/:id`` (``:name`` is one segment), ``/docs/*rest`` or ``/docs/*``
(the rest of the path). A trailing slash is ignored. The first matching pattern is the
label; anything else is ``other``, so the label's values are bounded by the config.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

OTHER = "other"


def compile_pattern(pattern: str) -> re.Pattern[str]:
    parts = []
    for segment in pattern.strip("/").split("/"):
        if not segment:
            continue
        if segment.startswith(":"):
            parts.append("/[^/]+")
        elif segment.startswith("*"):
            parts.append("(?:/.*)?")
        else:
            parts.append("/" + re.escape(segment))
    return re.compile("".join(parts) + "/?" if parts else "/?")


class RouteMatcher:
    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        self._compiled = [(p, compile_pattern(p)) for p in patterns]
        self.route = lru_cache(maxsize=4096)(self._route)
        """The label of a path (cached: pages repeat)."""

    def _route(self, path: str | None) -> str:
        if not path:
            return OTHER
        if "://" in path or "?" in path or "#" in path:
            path = urlsplit(path).path
        for pattern, regex in self._compiled:
            if regex.fullmatch(path):
                return pattern
        return OTHER

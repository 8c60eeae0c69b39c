"""Which exposition format a scraper asked for, from its ``Accept`` header.

The rules are client_golang's (``expfmt.Negotiate``): media ranges in order of quality
(``q``), the more specific first among equals; the first one served wins;
``text/plain`` is served for no version or ``version=0.0.4``, and
``application/openmetrics-text`` for no version, ``0.0.1`` or ``1.0.0``. Ranges with
``q=0`` are refused (RFC 9110). Anything else, a wildcard, or no header at all gets the
Prometheus text format 0.0.4. Other parameters (``escaping``, ``charset``) do not matter:
every name we export is a legal legacy name.

Real headers::

    Prometheus 2.x  application/openmetrics-text;version=1.0.0,application/openmetrics-text;
                    version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1
    Prometheus 3.x  application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,
                    application/openmetrics-text;version=0.0.1;q=0.5,text/plain;
                    version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,
                    */*;q=0.2
    vmagent         text/plain;version=0.0.4;q=1,*/*;q=0.1
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_RANGES = 32
"""Media ranges considered; a longer header is cut (a scraper sends five or six)."""


class Format(enum.Enum):
    TEXT = "text/plain; version=0.0.4; charset=utf-8"
    OPENMETRICS_1_0_0 = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    OPENMETRICS_0_0_1 = "application/openmetrics-text; version=0.0.1; charset=utf-8"

    @property
    def content_type(self) -> str:
        return self.value

    @property
    def openmetrics(self) -> bool:
        return self is not Format.TEXT


@dataclass(frozen=True, slots=True)
class MediaRange:
    type: str
    subtype: str
    quality: float
    params: dict[str, str]


def parse_accept(header: str) -> list[MediaRange]:
    """The header's media ranges, best first (quality, then specificity, then order)."""
    ranges = []
    for part in header.split(",", MAX_RANGES)[:MAX_RANGES]:
        media, *raw_params = part.split(";")
        kind, slash, subtype = media.strip().lower().partition("/")
        if not slash or not kind or not subtype:
            continue
        quality = 1.0
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, value = raw.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:  # also NaN
                    quality = 0.0
            elif key:
                params[key] = value
        ranges.append(MediaRange(kind, subtype.strip(), quality, params))
    ranges.sort(key=lambda r: (-r.quality, r.type == "*", r.subtype == "*"))
    return ranges


def negotiate(accept: str | None) -> Format:
    for media in parse_accept(accept or ""):
        if media.quality <= 0:
            continue
        version = media.params.get("version", "")
        if media.type == "text" and media.subtype == "plain" and version in ("", "0.0.4"):
            return Format.TEXT
        if media.type == "application" and media.subtype == "openmetrics-text":
            if version == "1.0.0":
                return Format.OPENMETRICS_1_0_0
            if version in ("", "0.0.1"):
                return Format.OPENMETRICS_0_0_1
    return Format.TEXT

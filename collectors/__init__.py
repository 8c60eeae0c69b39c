"""Collectors, one package or module per source kind.

Each exposes ``sources(config) -> list[Source]``; :func:`build_sources` gathers them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collectors.base import Source
    from monitor.config import Config


def source_factories() -> list[Callable[[Config], list[Source]]]:
    """Imported lazily: ``monitor.config`` imports configuration models from packages
    under ``collectors`` (``collectors.heroku_logs.config``), so importing this package
    must not import the configuration back."""
    from collectors import crux, http_probe, memcached, pgbouncer, postgres, psi, redis_cache

    return [
        postgres.sources,
        pgbouncer.sources,
        redis_cache.sources,
        memcached.sources,
        crux.sources,
        psi.sources,
        http_probe.sources,
    ]


def build_sources(config: Config) -> list[Source]:
    out: list[Source] = []
    for factory in source_factories():
        out.extend(factory(config))
    return out

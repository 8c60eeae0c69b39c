"""Collectors, one package or module per source kind.

Each exposes ``sources(config) -> list[Source]``; :func:`build_sources` gathers them.
"""

from __future__ import annotations

from collections.abc import Callable

from collectors import crux, http_probe, memcached, pgbouncer, postgres, psi, redis_cache
from collectors.base import Source
from monitor.config import Config

SOURCE_FACTORIES: list[Callable[[Config], list[Source]]] = [
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
    for factory in SOURCE_FACTORIES:
        out.extend(factory(config))
    return out

"""Collectors, one package or module per source kind.

Each exposes ``sources(config) -> list[Source]``; :func:`build_sources` gathers them.
The packages are imported lazily, so that configuration models living beside their
collector (``collectors/queries/config.py``) can be imported by the root config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collectors.base import Source
    from monitor.config import Config


def source_factories() -> list[Callable[[Config], list[Source]]]:
    from collectors import (
        crux,
        http_probe,
        memcached,
        pgbouncer,
        postgres,
        psi,
        queries,
        redis_cache,
    )

    def query_sources(config: Config) -> list[Source]:
        return queries.sources(config.queries, config.targets.postgres, config.interval)

    return [
        postgres.sources,
        pgbouncer.sources,
        redis_cache.sources,
        memcached.sources,
        crux.sources,
        psi.sources,
        http_probe.sources,
        query_sources,
    ]


def build_sources(config: Config) -> list[Source]:
    out: list[Source] = []
    for factory in source_factories():
        out.extend(factory(config))
    return out

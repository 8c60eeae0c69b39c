"""Custom SQL queries exported as metrics (business metrics): ``queries:`` in the config.

One :class:`~collectors.queries.source.QuerySource` per query and target, each with one
job on the query's own interval and timeout. The queries of one target share a small
pool of their own (``targets.postgres[].query_connections``, 2 by default), apart from
the built-in collectors' connections. See docs/queries.md.

Importing this package imports nothing else (the root config imports ``.config``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collectors.postgres.config import PostgresTarget
    from collectors.queries.config import QueryConfig
    from monitor.kernel.source import Source


def sources(
    queries: Sequence[QueryConfig],
    postgres: Sequence[PostgresTarget],
    default_interval: float,
) -> list[Source]:
    """A source per (query, target). The queries of one target share one small pool."""
    from collectors.postgres.connection import PostgresPool
    from collectors.queries.source import QuerySource

    by_name = {t.name: t for t in postgres}
    pools: dict[str, PostgresPool] = {}
    out: list[Source] = []
    for query in queries:
        for name in query.targets:
            target = by_name.get(name)
            if target is None:
                continue  # refused by the config's validation already
            pool = pools.get(name)
            if pool is None:
                size = {"max_connections": target.query_connections}
                pool = pools[name] = PostgresPool(target.model_copy(update=size))
            out.append(QuerySource(query, name, pool, default_interval))
    return out

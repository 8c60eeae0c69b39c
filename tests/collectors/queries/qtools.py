"""Helpers for the custom-query tests (import from tests.collectors.queries.qtools)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collectors.queries.source import QuerySource
from monitor.kernel.snapshot import Sample, find


def query_doc(name: str, sql: str, *metrics: dict[str, Any], **options: Any) -> dict[str, Any]:
    options.setdefault("targets", ["primary"])
    return {"name": name, "sql": sql, "metrics": list(metrics), **options}


def one(sources: Sequence[QuerySource]) -> QuerySource:
    (source,) = sources
    return source


def value(samples: Sequence[Sample], name: str, **labels: str) -> float | None:
    found = find(samples, name, **labels)
    assert len(found) <= 1, f"{len(found)} samples of {name} {labels}"
    return found[0].value if found else None


def names(samples: Sequence[Sample]) -> set[str]:
    return {s.name for s in samples}

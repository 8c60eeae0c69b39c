"""Sharded workers: which targets this daemon watches when several share the work.

``shard: {index: I, total: N}`` (1 <= I <= N), or ``MONITOR_SHARD=I/N``, or on Heroku
the dyno number: with ``DYNO=worker.3`` and ``shard: {total: 4}`` (or
``MONITOR_SHARD_TOTAL=4``) this daemon is shard 3 of 4. Precedence: ``MONITOR_SHARD``,
then ``shard.index``, then the dyno number. Without any of them there is one shard.

Each target belongs to exactly one shard: the first 8 bytes of SHA-256 of
``kind/name``, modulo N, plus one. The hash is stable across processes, machines
and Python versions (unlike ``hash()``), so N workers with the same configuration
split the targets between them without talking to each other. A custom query runs on
the shard that owns its PostgreSQL target.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Self

from pydantic import Field, model_validator

from monitor.kernel.config.types import Model
from monitor.kernel.snapshot import Sample, gauge, info
from monitor.kernel.source import Source

SHARD_INFO = info(
    "monitor_shard_info", "This daemon's shard (1-based) and their number", "index", "total"
)
SHARD_TARGET = gauge(
    "monitor_shard_target_info", "1 for each target this shard watches", "kind", "name"
)
SELF = "monitor"
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_DYNO = re.compile(r"^[A-Za-z0-9_-]+\.(\d+)$")


class ShardConfig(Model):
    """``shard:``: this daemon's part of the targets."""

    index: int | None = Field(default=None, ge=1)
    """1-based; unset: from ``MONITOR_SHARD`` or the Heroku dyno number."""
    total: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _in_range(self) -> Self:
        if self.index is not None and self.index > self.total:
            raise ValueError(f"index {self.index} is above total {self.total}")
        return self


@dataclass(frozen=True, slots=True)
class Shard:
    index: int = 1
    total: int = 1

    @property
    def sharded(self) -> bool:
        return self.total > 1

    def owns(self, kind: str, name: str) -> bool:
        return owner(kind, name, self.total) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


class ShardError(ValueError):
    pass


def owner(kind: str, name: str, total: int) -> int:
    """The 1-based shard that watches target ``name`` of ``kind``."""
    digest = hashlib.sha256(f"{kind}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total + 1


def parse_shard(text: str) -> Shard:
    match = _SPEC.match(text)
    if not match:
        raise ShardError(f"MONITOR_SHARD={text!r}: expected INDEX/TOTAL, e.g. 2/4")
    index, total = int(match[1]), int(match[2])
    if not 1 <= index <= total:
        raise ShardError(f"MONITOR_SHARD={text!r}: INDEX must be between 1 and TOTAL")
    return Shard(index, total)


def resolve_shard(config: ShardConfig | None, environ: Mapping[str, str]) -> Shard:
    """This daemon's shard from the environment and the ``shard:`` section."""
    spec = environ.get("MONITOR_SHARD", "").strip()
    if spec:
        return parse_shard(spec)
    if config is not None and config.index is not None:
        return Shard(config.index, config.total)
    total_text = environ.get("MONITOR_SHARD_TOTAL", "").strip()
    total = config.total if config is not None else 1
    if total_text:
        if not total_text.isdigit() or int(total_text) < 1:
            raise ShardError(f"MONITOR_SHARD_TOTAL={total_text!r}: expected a positive number")
        total = int(total_text)
    if total == 1:
        return Shard()
    dyno = _DYNO.match(environ.get("DYNO", ""))
    if dyno is None:
        raise ShardError(
            f"{total} shards but no index: set MONITOR_SHARD=I/{total} or shard.index "
            "(on Heroku the dyno number of DYNO=worker.N is used)"
        )
    index = int(dyno[1])
    if not 1 <= index <= total:
        raise ShardError(f"DYNO={environ['DYNO']}: dyno number {index} is above {total} shards")
    return Shard(index, total)


def shard_key(source: Source) -> tuple[str, str]:
    """What a source is assigned by: its own kind and name, except that a custom query
    follows its PostgreSQL target."""
    target = getattr(source, "target", None)
    if source.kind == "query" and isinstance(target, str):
        return "postgres", target
    return source.kind, source.name


def select(sources: Iterable[Source], shard: Shard) -> list[Source]:
    """The sources this shard watches."""
    return [s for s in sources if shard.owns(*shard_key(s))]


def shard_samples(shard: Shard, owned: Sequence[Source]) -> list[Sample]:
    """``monitor_shard_info`` and one ``monitor_shard_target_info`` per owned target."""
    out = [SHARD_INFO(1, str(shard.index), str(shard.total), target=SELF)]
    out.extend(SHARD_TARGET(1, s.kind, s.name, target=SELF) for s in owned)
    return out

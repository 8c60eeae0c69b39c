"""Helpers for the log drain tests: the reference sample bodies and a component to feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from support import parse_exposition

from collectors.heroku_logs.component import LogDrainComponent
from collectors.heroku_logs.release_log import MemoryReleaseLog, ReleaseLog
from monitor.app.config import validate
from monitor.kernel.exposition import Exposition
from monitor.kernel.snapshot_store import SnapshotStore

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "heroku_drains"
MiB = 1024.0 * 1024.0
KiB = 1024.0
PASSWORD = "drain-Secret-pw7"


def body(name: str) -> bytes:
    return next(SAMPLES.glob(f"{name}*.body")).read_bytes()


def headers(name: str) -> dict[str, str]:
    """The Logplex headers of a sample (without Host and Content-Length)."""
    text = next(SAMPLES.glob(f"{name}*.headers")).read_text()
    out = {}
    for line in text.splitlines()[1:]:
        key, sep, value = line.partition(":")
        if sep and key.lower() not in ("host", "content-length"):
            out[key.strip()] = value.strip()
    return out


def component(release_log: ReleaseLog | None = None, **drain: Any) -> LogDrainComponent:
    drain.setdefault("password", PASSWORD)
    config = validate({"log_drain": drain}, environ={})
    assert config.log_drain is not None
    return LogDrainComponent(
        config.log_drain,
        Exposition(SnapshotStore()),
        15.0,
        release_log if release_log is not None else MemoryReleaseLog(),
    )


def exposition(
    comp: LogDrainComponent,
) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    registry = CollectorRegistry()
    for collector in comp.collectors():
        registry.register(collector)
    text = generate_latest(registry).decode()
    return text, parse_exposition(text)

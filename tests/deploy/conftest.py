"""Fixtures for the deployment tests (helpers in tests/prometheus_support.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_support import DaemonProcess, PrometheusServer, monitor_process, prometheus

StartPrometheus = Callable[..., PrometheusServer]
StartMonitor = Callable[..., DaemonProcess]


@pytest.fixture
def start_prometheus() -> Iterator[StartPrometheus]:
    """``start_prometheus(scrape_configs, receiver=True)``; stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda *a, **kw: stack.enter_context(prometheus(*a, **kw))


@pytest.fixture
def start_monitor(tmp_path: Path) -> Iterator[StartMonitor]:
    """``start_monitor(env=..., config=..., token=..., name=...)``; stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda **kw: stack.enter_context(monitor_process(tmp_path, **kw))

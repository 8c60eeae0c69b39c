"""Shared fixtures: a real PostgreSQL primary + streaming replica, daemons on free ports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import structlog
from support import REQUIRE_ALL, wait_for

from monitor.app.config import Config, validate
from monitor.app.daemon import Daemon
from monitor.app.demo.testbed import TestBed, TestBedError, find_pg_bin
from monitor.kernel.redact import clear_secrets


def _need_postgres() -> None:
    try:
        find_pg_bin()
    except TestBedError as exc:
        if REQUIRE_ALL:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def pg_bed() -> Iterator[TestBed]:
    """One primary + replica shared by the tests that do not stop servers."""
    _need_postgres()
    with TestBed(replica=True) as bed:
        yield bed


@pytest.fixture
def own_bed() -> Iterator[TestBed]:
    """A primary + replica of this test's own, for tests that stop or pause servers."""
    _need_postgres()
    with TestBed(replica=True) as bed:
        yield bed


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    clear_secrets()


@pytest.fixture(autouse=True)
def _plain_logging() -> Iterator[None]:
    structlog.reset_defaults()
    yield


def make_config(**doc: Any) -> Config:
    doc.setdefault("http", {"listen": "127.0.0.1:0"})
    doc.setdefault("state", {"url": "sqlite:///:memory:"})
    return validate(doc, environ={})


class RunningDaemon:
    def __init__(self, daemon: Daemon, task: asyncio.Task[int]) -> None:
        self.daemon = daemon
        self.task = task

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.daemon.bound_port}"

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return await client.get(self.url + path, **kwargs)

    async def stop(self) -> int:
        self.daemon.request_stop()
        return await asyncio.wait_for(self.task, 15)


@contextlib.asynccontextmanager
async def run_daemon(config: Config) -> AsyncIterator[RunningDaemon]:
    """Start a daemon in this loop; wait until it listens; stop it afterwards."""
    daemon = Daemon(config)
    task = asyncio.create_task(daemon.run())
    await wait_for(lambda: daemon.bound_port is not None or task.done(), timeout=10)
    if task.done():
        raise AssertionError(f"daemon exited early with {task.result()}")
    running = RunningDaemon(daemon, task)
    try:
        yield running
    finally:
        if not task.done():
            await running.stop()

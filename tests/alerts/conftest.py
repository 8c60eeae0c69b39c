"""Fixtures for the alerting tests: fake PagerDuty/Slack/webhook servers, a harness,
a state database on the test bed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from alert_fakes import ROUTING_KEY, FakeClock, FakeReceiverServer, Harness

from monitor.app.config import Config
from monitor.app.demo.testbed import TestBed


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakeReceiverServer]:
    server = FakeReceiverServer("pagerduty")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def slack() -> AsyncIterator[FakeReceiverServer]:
    server = FakeReceiverServer("slack")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def site() -> AsyncIterator[FakeReceiverServer]:
    """A web page for an HTTP probe; set ``site.site_status`` to make it fail."""
    server = FakeReceiverServer("site")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def webhook() -> AsyncIterator[FakeReceiverServer]:
    server = FakeReceiverServer("webhook")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def harness() -> AsyncIterator[Callable[[Config], Harness]]:
    made: list[Harness] = []
    clock = FakeClock()

    def make(config: Config) -> Harness:
        h = Harness(config, clock)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.close()


@pytest.fixture
def routing_key() -> str:
    return ROUTING_KEY


@pytest.fixture
def pg_state_url(pg_bed: TestBed) -> Iterator[str]:
    """A fresh database on the shared test bed for a PostgreSQL state store."""
    name = f"alert_state_{uuid.uuid4().hex[:8]}"
    TestBed.run_sql(pg_bed.primary, f"CREATE DATABASE {name}")
    yield pg_bed.primary.dsn(name)
    TestBed.run_sql(pg_bed.primary, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A state store URL: a SQLite file, then a database on the test bed's primary."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
    else:
        yield request.getfixturevalue("pg_state_url")

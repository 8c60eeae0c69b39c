"""Fixtures for the alerting tests: fake PagerDuty/Slack/webhook servers, a harness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from alert_fakes import ROUTING_KEY, FakeClock, FakeReceiverServer, Harness

from monitor.config import Config


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

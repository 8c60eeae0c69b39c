"""Fixtures for the custom-query tests: a business database on the shared test bed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conftest import make_config

from collectors import queries
from collectors.queries.source import QuerySource
from monitor.app.demo.testbed import TestBed
from monitor.kernel.source import Source

SCHEMA = """
CREATE TABLE jobs (
    id         serial PRIMARY KEY,
    queue      text NOT NULL,
    state      text NOT NULL DEFAULT 'pending',
    priority   int,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE readings (name text PRIMARY KEY, value bigint);
CREATE TABLE audit (id serial PRIMARY KEY, note text);
CREATE SEQUENCE ticket_seq;
CREATE FUNCTION write_audit() RETURNS int LANGUAGE sql AS
  $$ INSERT INTO audit (note) VALUES ('written by a monitoring query') RETURNING id $$;
INSERT INTO jobs (queue, state, priority, created_at) VALUES
  ('mail', 'pending', 1, now() - interval '30 seconds'),
  ('mail', 'pending', NULL, now() - interval '20 seconds'),
  ('billing', 'pending', 5, now() - interval '10 seconds'),
  ('billing', 'done', 2, now() - interval '1 hour');
"""


@pytest.fixture(scope="session")
def business_db(pg_bed: TestBed) -> str:
    """A database with a jobs table, a counter table, and a function that writes."""
    name = "biz_" + uuid.uuid4().hex[:10]
    TestBed.run_sql(pg_bed.primary, f"CREATE DATABASE {name}")
    TestBed.run_sql(pg_bed.primary, SCHEMA, dbname=name)
    return pg_bed.primary.dsn(name)


Make = Callable[..., list[QuerySource]]


@pytest.fixture
async def make_sources(business_db: str) -> AsyncIterator[Make]:
    """``make_sources(query_doc(...), ...)``: the query sources of a config on the
    business database; closed at the end of the test."""
    made: list[Source] = []

    def make(*docs: dict[str, Any], target: dict[str, Any] | None = None) -> list[QuerySource]:
        pg = {"name": "primary", "url": business_db, **(target or {})}
        config = make_config(targets={"postgres": [pg]}, queries=list(docs))
        out = queries.sources(config.queries, config.targets.postgres, config.interval)
        made.extend(out)
        return [s for s in out if isinstance(s, QuerySource)]

    yield make
    for source in made:
        await source.close()

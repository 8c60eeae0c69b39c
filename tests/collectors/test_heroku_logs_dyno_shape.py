"""Where the drain runs: a Heroku ``worker`` dyno shares the app's config vars (and so
``LOG_DRAIN_PASSWORD``) but never receives HTTP, so it does not run the drain; web dynos,
one-off dynos (``heroku run monitor check``) and hosts outside Heroku do."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from collectors.heroku_logs.component import (
    WORKER_TEXT,
    LogDrainComponent,
    WorkerDyno,
    components,
)
from collectors.heroku_logs.config import LogDrainConfig
from monitor.app.config import validate
from monitor.kernel.component import Context
from monitor.kernel.exposition import Exposition
from monitor.kernel.snapshot_store import SnapshotStore


def context() -> tuple[Context, LogDrainConfig]:
    config = validate({"log_drain": {"password": "drain-Secret-pw1"}}, environ={})
    store = SnapshotStore()
    ctx = Context(store, Exposition(store), config.http, 15.0)
    assert config.log_drain is not None
    return ctx, config.log_drain


@pytest.mark.parametrize("dyno", ["web.1", "web.12", "run.4821", None])
def test_the_drain_runs_where_http_can_reach_it(dyno: str | None) -> None:
    ctx, drain = context()
    environ = {"DYNO": dyno} if dyno else {}
    (comp,) = components(drain, "sqlite:///:memory:", ctx, environ)
    assert isinstance(comp, LogDrainComponent)


async def test_a_worker_dyno_does_not_run_the_drain_and_says_why() -> None:
    ctx, drain = context()
    (comp,) = components(drain, "sqlite:///:memory:", ctx, {"DYNO": "worker.1"})
    assert isinstance(comp, WorkerDyno)
    assert not comp.jobs() and not comp.collectors()  # no HerokuDrainSilent from it
    (result,) = await comp.check()
    assert result.item == "log_drain" and result.ok
    assert "worker.1" in result.detail
    assert "web=1 worker=0" in result.warnings[0]
    app = Starlette(routes=list(comp.routes()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        response = await client.post("/logs/shop", content=b"1 x\n")
    assert response.status_code == 403
    assert response.text == WORKER_TEXT

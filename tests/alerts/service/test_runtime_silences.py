"""Runtime silences: ``/silences``, ``monitor silence``, both state stores, a live daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from alert_fakes import ROUTING_KEY, Answer, FakeReceiverServer
from conftest import RunningDaemon, make_config, run_daemon
from support import metric, parse_exposition, wait_for
from support import run_monitor as monitor

from alerts.runtime_silences import RETENTION, SilenceError, parse_request
from alerts.service.component import AlertingComponent
from alerts.statedb import open_state_db
from alerts.statedb.records import SilenceRow
from monitor.app.config import StateConfig

TOKEN = "silence-token-1234567"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = 1_800_000_000.0


def doc(site: FakeReceiverServer, pagerduty: FakeReceiverServer, state_url: str) -> dict[str, Any]:
    return {
        "interval": "1s",
        "http": {"listen": "127.0.0.1:0", "auth_token": TOKEN},
        "state": {"url": state_url},
        "targets": {"http": [{"name": "site", "url": site.url, "interval": "1s", "timeout": "1s"}]},
        "receivers": {
            "oncall": {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": pagerduty.url}
        },
        "routes": [{"match": {"severity": "critical"}, "receivers": ["oncall"]}],
        "rules": [{"name": "ProbeFailed", "for": "1s"}],
        "silences": [
            {"match": {"target": "other"}, "end": "2099-01-01T00:00:00Z", "comment": "rebuild"}
        ],
    }


def alerting(daemon: RunningDaemon) -> AlertingComponent:
    (component,) = [c for c in daemon.daemon.components if isinstance(c, AlertingComponent)]
    return component


async def call(
    daemon: RunningDaemon, method: str, path: str, auth: bool = True, **kwargs: Any
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10.0) as client:
        headers = {**(AUTH if auth else {}), **kwargs.pop("headers", {})}
        return await client.request(method, daemon.url + path, headers=headers, **kwargs)


def write(tmp_path: Path, config: dict[str, Any]) -> str:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


async def self_metric(daemon: RunningDaemon, source: str) -> float | None:
    text = (await call(daemon, "GET", "/metrics")).text
    return metric(parse_exposition(text), "monitor_silences", source=source)


# ------------------------------------------------------------------------------ the stores


def row(silence_id: str, starts_at: float, ends_at: float) -> SilenceRow:
    return SilenceRow(
        silence_id, '{"alertname": "PgDown"}', "{}", starts_at, ends_at, "c", "me", starts_at
    )


async def test_store_add_load_expire_prune(store_url: str) -> None:
    store = open_state_db(StateConfig(url=store_url))
    await store.open()
    try:
        old = row("old", NOW - RETENTION - 7200, NOW - RETENTION - 3600)
        await store.add_silence(old, prune_before=0.0)
        await store.add_silence(row("a", NOW, NOW + 3600), prune_before=NOW - RETENTION)
        assert [r.id for r in await store.load_silences()] == ["a"]  # "old" pruned
        assert await store.expire_silence("a", NOW + 60) is True
        (expired,) = await store.load_silences()
        assert expired.ends_at == NOW + 60
        assert expired.expired_at == NOW + 60
        assert await store.expire_silence("a", NOW + 120) is True  # already over: unchanged
        assert (await store.load_silences())[0].ends_at == NOW + 60
        assert await store.expire_silence("nope", NOW) is False
    finally:
        await store.close()


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"matchers": {"alertname": "X"}, "duration": "2h"}, "comment"),
        ({"matchers": {"alertname": "X"}, "duration": "2h", "comment": "  "}, "comment"),
        ({"duration": "2h", "comment": "c"}, "matchers"),
        ({"matchers": {"bad-name": "X"}, "duration": "2h", "comment": "c"}, "matchers"),
        ({"matchers_re": {"a": "("}, "duration": "2h", "comment": "c"}, "matchers_re"),
        ({"matchers": {"a": "X"}, "comment": "c"}, "ends_at"),
        (
            {"matchers": {"a": "X"}, "comment": "c", "duration": "1h", "ends_at": "2099-01-01Z"},
            "ends_at",
        ),
        ({"matchers": {"a": "X"}, "comment": "c", "duration": "2 hours"}, "duration"),
        ({"matchers": {"a": "X"}, "comment": "c", "duration": "0s"}, "duration"),
        ({"matchers": {"a": "X"}, "comment": "c", "ends_at": "2099-01-01T00:00:00"}, "ends_at"),
        ({"matchers": {"a": "X"}, "comment": "c", "ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        (
            {
                "matchers": {"a": "X"},
                "comment": "c",
                "starts_at": "2099-01-02T00:00:00Z",
                "ends_at": "2099-01-01T00:00:00Z",
            },
            "ends_at",
        ),
        ({"matchers": {"a": "X"}, "comment": "c", "duration": "1h", "until": "x"}, "until"),
        ({"matchers": {"rule": "X", "alertname": "Y"}, "comment": "c", "duration": "1h"}, "rule"),
        (["not", "an", "object"], "body"),
    ],
)
def test_bad_requests_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(SilenceError) as err:
        parse_request(body, NOW, created_by="api")
    assert field in str(err.value)


def test_a_request_becomes_a_silence() -> None:
    silence = parse_request(
        {
            "matchers": {"rule": "PgDown", "target": "primary"},
            "duration": "2h",
            "comment": "failover drill",
        },
        NOW,
        created_by="api",
    )
    assert silence.matchers == '{"alertname": "PgDown", "target": "primary"}'  # rule: alias
    assert (silence.starts_at, silence.ends_at) == (NOW, NOW + 7200)
    assert silence.created_by == "api"
    later = parse_request(
        {
            "matchers_re": {"target": "pri.*"},
            "starts_at": "2027-01-15T08:00:00+01:00",
            "ends_at": "2027-01-15T09:30:00Z",
            "comment": "c",
            "created_by": "alice",
        },
        NOW,
        created_by="api",
    )
    assert later.ends_at - later.starts_at == 2.5 * 3600
    assert later.created_by == "alice"


# ------------------------------------------------------------------------------ HTTP API


async def test_api_crud_and_auth(
    tmp_path: Path, site: FakeReceiverServer, pagerduty: FakeReceiverServer
) -> None:
    config = make_config(**doc(site, pagerduty, f"sqlite:///{tmp_path / 'state.db'}"))
    body = {"matchers": {"alertname": "ProbeFailed"}, "duration": "2h", "comment": "deploy"}
    async with run_daemon(config) as daemon:
        assert (await call(daemon, "GET", "/silences", auth=False)).status_code == 401
        assert (await call(daemon, "POST", "/silences", auth=False, json=body)).status_code == 401
        assert (await call(daemon, "DELETE", "/silences/x", auth=False)).status_code == 401

        response = await call(daemon, "POST", "/silences", json=body)
        assert response.status_code == 201, response.text
        added = response.json()
        assert added["source"] == "runtime"
        assert added["matchers"] == {"alertname": "ProbeFailed"}
        assert added["comment"] == "deploy"
        assert added["created_by"] == "token@127.0.0.1"  # who, never the credential
        assert added["active"] is True

        listed = (await call(daemon, "GET", "/silences")).json()["silences"]
        by_id = {s["id"]: s for s in listed}
        assert by_id["config-0"]["source"] == "config"
        assert by_id["config-0"]["comment"] == "rebuild"
        assert by_id[added["id"]] == added
        assert await wait_for(lambda: self_metric(daemon, "runtime")) == 1
        assert await self_metric(daemon, "config") == 1

        bad = await call(daemon, "POST", "/silences", json={**body, "duration": "soon"})
        assert bad.status_code == 400
        assert bad.json()["error"].startswith("duration:")
        bad = await call(daemon, "POST", "/silences", content=b"{not json")
        assert bad.status_code == 415  # no Content-Type: application/json
        json_type = {"content-type": "application/json"}
        bad = await call(daemon, "POST", "/silences", content=b"{", headers=json_type)
        assert bad.status_code == 400
        assert "JSON" in bad.json()["error"]

        assert (await call(daemon, "DELETE", f"/silences/{added['id']}")).status_code == 204
        missing = await call(daemon, "DELETE", "/silences/nosuchsilence")
        assert missing.status_code == 404
        assert "nosuchsilence" in missing.json()["error"]
        assert (await call(daemon, "DELETE", "/silences/config-0")).status_code == 404
        listed = (await call(daemon, "GET", "/silences")).json()["silences"]
        (expired,) = [s for s in listed if s["id"] == added["id"]]
        assert expired["active"] is False  # kept in the store, no longer in force
        await wait_for(lambda: _is(daemon, "runtime", 0))
        assert ROUTING_KEY not in str(listed)


async def _is(daemon: RunningDaemon, source: str, value: float) -> bool:
    return await self_metric(daemon, source) == value


# ------------------------------------------------------------------------------ end to end


async def test_cli_silence_stops_a_retried_page_and_expire_brings_it_back(
    tmp_path: Path, store_url: str, site: FakeReceiverServer, pagerduty: FakeReceiverServer
) -> None:
    config_doc = doc(site, pagerduty, store_url)
    path = write(tmp_path, config_doc)
    pagerduty.then(*[Answer(500, "overloaded") for _ in range(100)])
    async with run_daemon(make_config(**config_doc)) as daemon:
        engine = alerting(daemon).engine
        site.site_status = 500
        await wait_for(lambda: len(pagerduty.requests) >= 2, timeout=20)  # being retried

        code, out, err = await monitor(
            "silence", "add", "-c", path, "--match", "rule=ProbeFailed",
            "--match", "target=site", "--for", "2h", "--comment", "site migration",
        )  # fmt: skip
        assert code == 0, err
        silence_id = out.strip()
        # the running daemon picks it up from the store, no restart
        await wait_for(lambda: engine.counters.notifications.get(("oncall", "silenced")), 10)
        await wait_for(lambda: engine.pending_count() == 0, timeout=5)
        sent = len(pagerduty.requests)
        evaluations = engine.counters.evaluations
        await wait_for(lambda: engine.counters.evaluations >= evaluations + 3, timeout=10)
        assert len(pagerduty.requests) == sent  # still firing, but nothing goes out
        assert engine.state.instances  # the alert itself keeps firing
        assert await wait_for(lambda: _is(daemon, "runtime", 1))

        code, out, err = await monitor("silence", "list", "-c", path)
        assert code == 0, err
        assert silence_id in out
        assert "alertname=ProbeFailed target=site" in out
        assert "config-0" in out

        pagerduty.answers.clear()  # PagerDuty is back
        code, out, err = await monitor("silence", "expire", "-c", path, silence_id)
        assert code == 0, err
        await wait_for(lambda: pagerduty.actions()[sent:] == ["trigger"], timeout=15)
        assert pagerduty.bodies()[-1]["dedup_key"] == pagerduty.bodies()[0]["dedup_key"]
        for text in (out, err):
            assert ROUTING_KEY not in text


async def test_silences_survive_a_restart(
    store_url: str, site: FakeReceiverServer, pagerduty: FakeReceiverServer
) -> None:
    config = make_config(**doc(site, pagerduty, store_url))
    body = {"matchers": {"target": "site"}, "duration": "6d", "comment": "x"}
    async with run_daemon(config) as daemon:
        response = await call(daemon, "POST", "/silences", json=body)
        assert response.status_code == 201, response.text
        silence_id = response.json()["id"]
    async with run_daemon(config) as daemon:
        listed = (await call(daemon, "GET", "/silences")).json()["silences"]
        assert [s["id"] for s in listed if s["source"] == "runtime"] == [silence_id]
        site.site_status = 500
        component = alerting(daemon)
        await wait_for(lambda: component.engine.state.instances, timeout=15)
        (alert,) = component.alerts_json()
        assert alert["state"] in ("pending", "firing")
        assert alert["silenced"] is True
        evaluations = component.engine.counters.evaluations
        await wait_for(lambda: component.engine.counters.evaluations >= evaluations + 3, 10)
        assert pagerduty.requests == []


# ------------------------------------------------------------------------------ secrets


async def test_no_secret_in_cli_errors(tmp_path: Path) -> None:
    path = write(tmp_path, {"state": {"url": "postgresql://u:s3cretpw@127.0.0.1:1/state"}})
    for args in (
        ("add", "--match", "a=b", "--for", "1h", "--comment", "c"),
        ("list",),
        ("expire", "abc"),
    ):
        code, out, err = await monitor("silence", args[0], "-c", path, *args[1:])
        assert code == 1
        assert "cannot connect to the state store" in err
        assert "s3cretpw" not in out + err

"""Deploy markers: POST /deploys, `monitor deploy mark|report`, the dyno metadata, the
drain's release lines; one durable row per (app, version); exported and announced."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
import yaml
from alert_fakes import ROUTING_KEY, FakeReceiverServer
from conftest import make_config, run_daemon
from deploy_replay import APP, T0, release_body
from heroku_drain_support import PASSWORD, body, headers
from heroku_drain_support import component as drain_component
from support import parse_exposition, run_monitor, wait_for

from collectors.deploys.announce import Announcer, ChangeTarget, change_url
from collectors.deploys.compare import Finding
from collectors.deploys.component import DeploysComponent
from collectors.deploys.config import DeploysConfig
from collectors.deploys.job import DeployJob
from collectors.deploys.markers import MarkerError, from_dyno_metadata, marker
from collectors.deploys.store import MemoryDeployStore, StoredVerdict, open_deploy_store
from monitor.kernel.component import Context
from monitor.kernel.exposition import Exposition
from monitor.kernel.http import HttpConfig, build_app
from monitor.kernel.snapshot_store import SnapshotStore

TOKEN = "deploy-Token-0123456789"
ROOT = Path(__file__).resolve().parents[2]


def deploys(store: MemoryDeployStore | None = None, **http: object) -> DeploysComponent:
    snapshots = SnapshotStore()
    context = Context(snapshots, Exposition(snapshots), HttpConfig.model_validate(http), 15.0)
    return DeploysComponent(
        DeploysConfig(), context, store or MemoryDeployStore(), None, environ={}
    )


def client(comp: DeploysComponent, http: HttpConfig) -> httpx.AsyncClient:
    snapshots = SnapshotStore()
    app = build_app(
        exposition=Exposition(snapshots),
        store=snapshots,
        http_config=http,
        is_running=lambda: True,
        extra_routes=comp.routes(),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


async def test_post_deploys_needs_configured_credentials() -> None:
    comp = deploys()
    async with client(comp, HttpConfig()) as c:
        response = await c.post("/deploys", json={"app": APP, "version": "v1"})
    assert response.status_code == 403
    assert "METRICS_AUTH_TOKEN" in response.text
    assert await comp.store.apps() == []


async def test_post_deploys_records_and_refuses_bad_input() -> None:
    store = MemoryDeployStore()
    comp = deploys(store, auth_token=TOKEN)
    http = HttpConfig(auth_token=TOKEN)  # type: ignore[arg-type]
    async with client(comp, http) as c:
        assert (await c.post("/deploys", json={"app": APP, "version": "v9"})).status_code == 401
        wrong = {**AUTH, "Authorization": "Bearer nope"}
        assert (
            await c.post("/deploys", json={"app": APP, "version": "v9"}, headers=wrong)
        ).status_code == 401
        plain = {**AUTH, "Content-Type": "text/plain"}
        assert (
            await c.post("/deploys", content=b'{"app":"shop","version":"v9"}', headers=plain)
        ).status_code == 415
        for body, problem in (
            (b"{", "not valid JSON"),
            (b"[1]", "JSON object"),
            (b'{"app":"shop","version":"latest"}', "version"),
            (b'{"app":"shop","version":"v9","commit":"zz"}', "commit"),
            (b'{"app":"../x","version":"v9"}', "app"),
            (b'{"app":"shop","version":"v9","evil":1}', "unknown fields"),
            (b"\xff\xfe", "not valid JSON"),
        ):
            response = await c.post("/deploys", content=body, headers=AUTH)
            assert response.status_code == 400, body
            assert problem in response.json()["error"], body
        huge = json.dumps({"app": APP, "version": "v9", "description": "x" * 100_000})
        assert (await c.post("/deploys", content=huge, headers=AUTH)).status_code == 413
        assert await store.apps() == []
        ok = await c.post(
            "/deploys",
            json={"app": APP, "version": "v9", "description": "fix by user a@example.com"},
            headers=AUTH,
        )
        assert ok.status_code == 201 and ok.json() == {
            "app": APP,
            "version": "v9",
            "recorded": True,
        }
        # the same version again fills in what the first lacked, never a second row
        again = await c.post(
            "/deploys", json={"app": APP, "version": "9", "commit": "ABCDEF1234"}, headers=AUTH
        )
        assert again.status_code == 201
    (row,) = await store.recent(APP)
    assert (row.version, row.commit, row.kind) == (9, "abcdef1234", "deploy")
    assert row.description == "fix"  # e-mails cut, as on the drain


def test_marker_validation() -> None:
    assert marker(APP, "v123").version == 123
    assert marker(APP, 7, commit="60a874b3").kind == "deploy"
    for version in ("v0", "", "1.2", "v-1", None, "v1234567890"):
        with pytest.raises(MarkerError):
            marker(APP, version)
    event = marker(APP, "v2", description="line\nbreak\x00" + "y" * 500)
    assert "\n" not in event.description and len(event.description) == 200


def test_dyno_metadata() -> None:
    env = {
        "HEROKU_RELEASE_VERSION": "v77",
        "HEROKU_SLUG_COMMIT": "2c3a0b24069af49b3de35b8e8c26765c1dba9ff0",
        "HEROKU_APP_NAME": APP,
        "HEROKU_RELEASE_CREATED_AT": "2026-11-30T14:10:27Z",
    }
    event = from_dyno_metadata(env, None)
    assert event is not None
    assert (event.app, event.version, event.commit[:7]) == (APP, 77, "2c3a0b2")
    assert event.released_at == pytest.approx(1796047827.0)
    assert from_dyno_metadata({"HEROKU_RELEASE_VERSION": "v77"}, None) is None
    assert from_dyno_metadata({**env, "HEROKU_RELEASE_VERSION": "junk"}, None) is None


async def test_markers_from_every_source_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    # the drain's release lines (its own writer, its own connection)
    store = open_deploy_store(url)
    drain = drain_component(store)
    await drain.start()
    drain.ingestor.ingest(APP, release_body(T0, 10), T0)
    await drain.flush()
    await drain.stop()
    # POST /deploys
    store = open_deploy_store(url)
    comp = deploys(store, auth_token=TOKEN)  # type: ignore[arg-type]
    async with client(comp, HttpConfig(auth_token=TOKEN)) as c:  # type: ignore[arg-type]
        posted = await c.post("/deploys", json={"app": APP, "version": "v11"}, headers=AUTH)
        assert posted.status_code == 201
    # the dyno's own release at start
    snapshots = SnapshotStore()
    context = Context(snapshots, Exposition(snapshots), HttpConfig(), 15.0)
    env = {"HEROKU_RELEASE_VERSION": "v12", "HEROKU_APP_NAME": APP}
    started = DeploysComponent(DeploysConfig(), context, store, None, environ=env)
    await started.start()
    await started.stop()
    # the command line
    status, out, err = await run_monitor(
        "deploy", "mark", "-c", str(config_file(tmp_path, url)), "--version", "v13", "--app", APP
    )
    assert status == 0, err
    assert "recorded shop v13" in out
    # a new process: everything is there, once
    job = DeployJob(DeploysConfig(), open_deploy_store(url), None, None, Announcer(()), 15.0)
    samples = await job.collect()
    versions = sorted(
        s.labels["version"] for s in samples if s.name == "monitor_deploy_timestamp_seconds"
    )
    assert versions == ["v10", "v11", "v12", "v13"]
    commits = {s.labels["version"]: s.labels["commit"] for s in samples if s.labels.get("commit")}
    assert commits == {"v10": "60a874b"}


def config_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "monitor.yml"
    path.write_text(yaml.safe_dump({"state": {"url": url}, "deploys": {}}))
    return path


async def test_deploy_cli_exit_codes_and_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    cfg = str(config_file(tmp_path, url))
    status, _, err = await run_monitor(
        "deploy", "mark", "-c", cfg, "--version", "latest", "--app", APP
    )
    assert status == 2 and "version" in err
    bad = tmp_path / "unreachable.yml"
    bad.write_text(yaml.safe_dump({"state": {"url": "postgresql://u:pw@127.0.0.1:1/x"}}))
    status, _, err = await run_monitor(
        "deploy", "mark", "-c", str(bad), "--version", "v1", "--app", APP
    )
    assert status == 1 and "pw" not in err
    status, _, _ = await run_monitor("deploy", "report", "-c", cfg)
    assert status == 2  # nothing compared yet
    store = open_deploy_store(url)
    finding = Finding("p95", "/checkout", 0.18, 0.42, 1200, 1100, 1e-9, True, True)
    await store.save_verdict(StoredVerdict(APP, 124, "regressed", T0, (finding,)))
    await store.close()
    status, out, err = await run_monitor("deploy", "report", "-c", cfg, "--version", "v124")
    assert status == 0, err
    assert "shop v124: regressed" in out
    assert "p95" in out and "/checkout" in out and "180 ms" in out and "420 ms" in out


async def test_new_markers_are_announced_to_pagerduty_and_slack() -> None:
    pagerduty, slack = FakeReceiverServer("webhook"), FakeReceiverServer("slack")
    await pagerduty.start()
    await slack.start()
    try:
        pd_url = change_url(f"http://127.0.0.1:{pagerduty.port}/v2/enqueue")
        announcer = Announcer(
            (
                ChangeTarget("oncall", "pagerduty", pd_url, ROUTING_KEY),
                ChangeTarget("team", "slack", slack.url),
            )
        )
        store = MemoryDeployStore()
        await store.record(marker(APP, "v1", at=T0))
        now = [T0 + 60]
        job = DeployJob(DeploysConfig(), store, None, None, announcer, 15.0, clock=lambda: now[0])
        await job.collect()  # v1 was there before: not announced
        await store.record(
            marker(APP, "v2", commit="60a874b3", description="checkout v2", at=T0 + 90)
        )
        now[0] += 60
        await job.collect()
        await job.collect()  # once only
        await announcer.drain()
        assert len(pagerduty.requests) == 1 and len(slack.requests) == 1
        sent = pagerduty.requests[0]
        assert sent.path == "/v2/change/enqueue"
        body = sent.json()
        assert body["routing_key"] == ROUTING_KEY and "event_action" not in body
        assert body["payload"]["summary"] == "shop v2 deployed (60a874b)"
        assert body["payload"]["source"] == "app-monitor"
        assert body["payload"]["timestamp"].endswith("Z")
        assert body["payload"]["custom_details"]["commit"] == "60a874b3"
        assert "shop v2 deployed" in slack.requests[0].json()["text"]
        await announcer.aclose()
    finally:
        await pagerduty.stop()
        await slack.stop()


async def test_exported_releases_are_bounded() -> None:
    store = MemoryDeployStore()
    for v in range(1, 31):
        await store.record(marker(APP, v, at=T0 + v))
    job = DeployJob(DeploysConfig(keep_releases=5), store, None, None, Announcer(()), 15.0)
    samples = await job.collect()
    versions = [
        s.labels["version"] for s in samples if s.name == "monitor_deploy_timestamp_seconds"
    ]
    assert sorted(versions) == ["v26", "v27", "v28", "v29", "v30"]


def test_every_dashboard_draws_deploy_annotations() -> None:
    for path in sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")):
        annotations = json.loads(path.read_text())["annotations"]["list"]
        deploy = [a for a in annotations if "monitor_deploy_timestamp_seconds" in a.get("expr", "")]
        assert deploy and deploy[0]["useValueForTime"] is True, path.name


async def test_daemon_turns_drain_releases_and_posts_into_markers(tmp_path: Path) -> None:
    config = make_config(
        interval="1s",
        http={"listen": "127.0.0.1:0", "auth_token": TOKEN},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        log_drain={"password": PASSWORD},
        deploys={},
    )
    async with run_daemon(config) as daemon, httpx.AsyncClient(timeout=10) as http:
        drain_headers = {
            **headers("05"),
            "content-type": "application/logplex-1",
            "authorization": "Basic " + base64.b64encode(f"x:{PASSWORD}".encode()).decode(),
        }
        r = await http.post(f"{daemon.url}/logs/shop", content=body("05"), headers=drain_headers)
        assert r.status_code == 204, r.text
        r = await http.post(
            f"{daemon.url}/deploys", json={"app": "shop", "version": "v126"}, headers=AUTH
        )
        assert r.status_code == 201

        async def versions() -> set[str] | None:
            r = await http.get(
                f"{daemon.url}/metrics", headers={"authorization": f"Bearer {TOKEN}"}
            )
            found = {
                dict(labels)["version"]
                for (name, labels) in parse_exposition(r.text)
                if name == "monitor_deploy_timestamp_seconds"
            }
            return found if len(found) == 4 else None

        assert await wait_for(versions, timeout=15) == {"v123", "v124", "v125", "v126"}


def test_sharded_daemons_compare_on_the_first_shard_only() -> None:
    from monitor.app.config import validate
    from monitor.app.deploys_wiring import deploys_section

    config = validate({"deploys": {}}, environ={})
    assert deploys_section(config, {}) is config.deploys
    assert deploys_section(config, {"MONITOR_SHARD": "1/3"}) is config.deploys
    assert deploys_section(config, {"MONITOR_SHARD": "2/3"}) is None
    assert deploys_section(validate({}, environ={}), {}) is None

"""deploy/grafana: the dashboards are what build_dashboards.py makes, every query is valid
PromQL (``promtool``), and every metric a dashboard or rule names is one the daemon
really exports.

"Really exports" is decided by a real run. One daemon (``monitor run``) watches a
PostgreSQL primary and replica with a table, a sequence and an unused index, PgBouncer,
Redis, Memcached, an HTTPS endpoint (probe), browser beacons, Heroku log drain bodies
(router, runtime metrics, Heroku Postgres and Redis, releases, crashes, l2met, L10) and
its own alerting and push. A real Prometheus scrapes it. The metric names Prometheus
then holds are the exported set. CrUX and PageSpeed Insights need Google's APIs, so their names come
from the metric specs their collectors declare. Every query then runs against that
Prometheus without error, and those over metrics the run produced return data.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import pkgutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis as redis_lib
import yaml
from conftest import _need_postgres
from heroku_drain_support import SAMPLES, headers
from prometheus_support import (
    DASHBOARDS,
    PrometheusServer,
    dashboard_queries,
    load_script,
    monitor_process,
    prometheus,
    promql_metric_names,
    rule_expressions,
)
from servers import memcached_server, pgbouncer_server, redis_server
from support import free_port, require_binary, wait_for_sync
from web_fakes import Reply, self_signed_cert, tls_server

from monitor.app.demo.testbed import TestBed
from monitor.kernel.snapshot import MetricSpec

ROOT = Path(__file__).resolve().parents[2]
PGBOUNCER_PW = "pgb-Secret-pw3"
ORIGIN = "https://shop.example.com"
NEEDS_GOOGLE = ("collectors.crux", "collectors.psi")
DRAIN_PW = "drain-Secret-pw9"
DRAIN_APP = "shop-production"


def builder() -> Any:
    return load_script(ROOT / "deploy" / "grafana" / "build_dashboards.py")


def test_dashboards_are_built_by_the_script() -> None:
    build = builder()
    files = {p.name for p in DASHBOARDS.glob("*.json")}
    assert files == set(build.DASHBOARDS)
    for name, make in build.DASHBOARDS.items():
        assert (DASHBOARDS / name).read_text() == build.render(make), (
            f"{name} differs: run `uv run python deploy/grafana/build_dashboards.py`"
        )


def test_dashboard_structure() -> None:
    uids = set()
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        assert board["uid"] not in uids
        uids.add(board["uid"])
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, (path.name, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                used = {v for v in variables if f"${v}" in target["expr"]}
                assert used <= set(variables), (path.name, panel["title"])
        for annotation in board["annotations"]["list"]:
            assert annotation["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert annotation["expr"], (path.name, annotation["name"])


def test_heroku_dashboard_shows_releases_as_annotations() -> None:
    board = json.loads((DASHBOARDS / "heroku.json").read_text())
    # one release annotation: the deploy markers (the drain's release lines among them)
    (releases,) = board["annotations"]["list"]
    assert releases["useValueForTime"] is True  # the release time, not the scrape time
    assert "monitor_deploy_timestamp_seconds" in promql_metric_names(releases["expr"])
    assert "{{version}}" in releases["titleFormat"]
    kinds = {p["type"] for p in board["panels"]}
    assert "heatmap" in kinds
    heatmap = next(p for p in board["panels"] if p["type"] == "heatmap")
    assert heatmap["targets"][0]["format"] == "heatmap"
    assert "heroku_router_service_seconds_bucket" in heatmap["targets"][0]["expr"]


def test_every_query_is_valid_promql() -> None:
    """promtool parses every expression (as a recording rule) with Grafana's variables set."""
    promtool = require_binary("promtool", "/usr/bin/promtool")
    queries = dashboard_queries()
    assert len(queries) > 50
    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": q} for i, (_, q) in enumerate(queries)
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, f)
    try:
        result = subprocess.run(
            [promtool, "check", "rules", f.name], capture_output=True, text=True, timeout=60
        )
    finally:
        Path(f.name).unlink()
    assert result.returncode == 0, result.stdout + result.stderr


# -- a real run -----------------------------------------------------------------------------


@dataclass
class Run:
    prom: PrometheusServer
    names: set[str]


def google_only_names() -> set[str]:
    names: set[str] = set()
    for package in NEEDS_GOOGLE:
        pkg = importlib.import_module(package)
        modules = [pkg] + [
            importlib.import_module(info.name)
            for info in pkgutil.walk_packages(pkg.__path__, f"{package}.")
        ]
        for module in modules:
            names |= {v.name for v in vars(module).values() if isinstance(v, MetricSpec)}
    assert names, "no metric specs found for CrUX/PSI"
    return names


def prepare(bed: TestBed) -> None:
    """A table with a sequence and an unused index, and some statements to rank."""
    bed.run_sql(
        bed.primary,
        "CREATE TABLE IF NOT EXISTS deploy_orders (id serial PRIMARY KEY, note text);"
        "CREATE INDEX IF NOT EXISTS deploy_orders_note_idx ON deploy_orders (note);"
        "INSERT INTO deploy_orders (note) SELECT md5(i::text) FROM generate_series(1, 20000) i;"
        "ANALYZE deploy_orders;",
    )
    for _ in range(20):
        bed.run_sql(bed.primary, "SELECT count(*) FROM deploy_orders WHERE id % 7 = 3")


def send_drains(port: int) -> None:
    """Every sample body of tests/fixtures/heroku_drains, as Logplex sends it (09 is a
    retry of 02: a duplicate frame id)."""
    bodies = sorted(SAMPLES.glob("*.body"))
    assert len(bodies) >= 9
    for path in bodies:
        response = httpx.post(
            f"http://127.0.0.1:{port}/logs/{DRAIN_APP}",
            content=path.read_bytes(),
            headers=headers(path.name[:2]),
            auth=("drain", DRAIN_PW),
            timeout=10,
        )
        assert response.status_code == 204, (path.name, response.status_code, response.text)


def beacons() -> list[dict[str, Any]]:
    out = []
    for i, (name, value) in enumerate(
        [("LCP", 2100), ("FCP", 900), ("TTFB", 300), ("INP", 120), ("CLS", 0.05)]
    ):
        rating = "good"
        out.append(
            {
                "name": name,
                "value": value,
                "rating": rating,
                "delta": value,
                "id": f"v5-1700000000000-{1234567890123 + i}",
                "navigationType": "navigate",
                "path": "/products/42",
            }
        )
    return out


@contextlib.contextmanager
def traffic(bed: TestBed, bouncer: Any, redis: Any, memcached: Any) -> Iterator[None]:
    """Queries through PgBouncer and on the primary, cache hits and misses: the ratios and
    rates only exist while something happens."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        cache = redis_lib.Redis(host=redis.host, port=redis.port)
        host, port = memcached.address.rsplit(":", 1)
        try:
            with (
                psycopg.connect(
                    bouncer.database_url(), autocommit=True, prepare_threshold=None
                ) as pooled,
                psycopg.connect(bed.primary.dsn(), autocommit=True) as direct,
                socket.create_connection((host, int(port)), timeout=5) as mc,
            ):
                cache.set("deploy:key", "v")
                mc.sendall(b"set deploy:key 0 0 1\r\nv\r\n")
                mc.recv(64)
                while not stop.wait(0.2):
                    pooled.execute("SELECT count(*) FROM deploy_orders WHERE id < 100")
                    direct.execute("SELECT count(*) FROM deploy_orders WHERE id % 7 = 3")
                    cache.get("deploy:key")
                    cache.get("deploy:missing")
                    mc.sendall(b"get deploy:key\r\nget deploy:missing\r\n")
                    mc.recv(256)
        except BaseException as exc:
            errors.append(exc)
        finally:
            cache.close()

    thread = threading.Thread(target=loop, name="deploy-traffic", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
    assert not errors, f"traffic failed: {errors[0]!r}"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_binary("prometheus", "/usr/bin/prometheus")
    openssl = require_binary("openssl")
    tmp = tmp_path_factory.mktemp("full-run")
    with contextlib.ExitStack() as stack:
        _need_postgres()
        bed = stack.enter_context(TestBed(replica=True))
        assert bed.replica is not None
        prepare(bed)
        redis = stack.enter_context(redis_server(args=("--maxmemory", "64mb")))
        memcached = stack.enter_context(memcached_server())
        bouncer = stack.enter_context(
            pgbouncer_server(bed.primary.host, bed.primary.port, users={"stats": PGBOUNCER_PW})
        )
        cert, key = self_signed_cert(tmp, 30, openssl)
        site = stack.enter_context(tls_server(cert, key))
        site.route("GET", "/", Reply(200, "ok"))
        stack.enter_context(traffic(bed, bouncer, redis, memcached))
        prom_port = free_port()
        config = {
            "interval": "1s",
            "state": {"url": f"sqlite:///{tmp / 'state.db'}"},
            "targets": {
                "postgres": [
                    {
                        "name": "primary",
                        "url": bed.primary.dsn(),
                        "statements": {"include_query_text": True},
                        "vacuum": {"interval": "1s"},
                        "diagnose": {
                            "interval": "2s",
                            "timeout": "20s",
                            "unused_index_min_bytes": 0,
                            "bloat_min_bytes": 0,
                        },
                    },
                    {"name": "replica", "url": bed.replica.dsn()},
                ],
                "pgbouncer": [{"name": "pool", "url": bouncer.admin_url("stats", PGBOUNCER_PW)}],
                "redis": [{"name": "cache", "url": f"redis://{redis.host}:{redis.port}/0"}],
                "memcached": [{"name": "sessions", "servers": memcached.address}],
                "http": [
                    {
                        "name": "home",
                        "url": f"https://127.0.0.1:{site.port}/",
                        "ca_file": str(cert),
                        "interval": "1s",
                        "slo": {"objective": 0.999, "min_samples": 2},
                    }
                ],
                "rum": {
                    "allowed_origins": [ORIGIN],
                    "routes": ["/products/:id"],
                    "settle": "1s",
                    "min_reports": 1,  # one beacon of each: the window's p75 series exist
                    "min_clients": 1,  # from this one test client
                },
            },
            "deploys": {},  # the drain's release lines become deploy markers (annotations)
            "log_drain": {
                "password": DRAIN_PW,
                "routes": ["/checkout", "/api/v1/orders", "/assets/*"],
                "min_requests": 1,  # the fixtures' few requests: ratio and p95 exist
            },
            "receivers": {"stdout": {"type": "log"}},
            "routes": [{"match": {"severity": "warning"}, "receivers": ["stdout"]}],
            "rules": [
                {
                    "name": "DeployTestAlways",
                    "metric": "pg_up",
                    "op": ">=",
                    "threshold": 0,
                    "severity": "warning",
                    "summary": "a test alert so notifications flow",
                },
            ],
            "queries": [
                {
                    "name": "deploy_orders",
                    "targets": ["primary"],
                    "interval": "1s",
                    "sql": "SELECT left(note, 1) AS prefix, count(*) AS n FROM deploy_orders"
                    " GROUP BY 1",
                    "metrics": [{"name": "app_deploy_orders", "labels": ["prefix"], "value": "n"}],
                }
            ],
            "remote_write": {
                "url": f"http://127.0.0.1:{prom_port}/api/v1/write",
                "interval": "1s",
                "labels": {"job": "pushed"},
            },
        }
        daemon = stack.enter_context(monitor_process(tmp, config=config))
        scrape = {
            "job_name": "app-monitor",
            "static_configs": [{"targets": [f"127.0.0.1:{daemon.port}"]}],
        }
        prom = stack.enter_context(prometheus([scrape], receiver=True, port=prom_port))
        response = httpx.post(
            f"http://127.0.0.1:{daemon.port}/vitals",
            content=json.dumps(beacons()).encode(),
            headers={"content-type": "text/plain;charset=UTF-8", "origin": ORIGIN},
        )
        assert response.status_code == 204, response.text
        rejected = httpx.post(
            f"http://127.0.0.1:{daemon.port}/vitals",
            content=json.dumps(beacons()[:1]).encode(),
            headers={"content-type": "text/plain;charset=UTF-8", "origin": "https://evil.test"},
        )
        assert rejected.status_code >= 400
        send_drains(daemon.port)
        # every metric the dashboards and rules name, but those needing Google's APIs
        expected = referenced_names() - google_only_names()

        def names() -> set[str]:
            response = httpx.get(f"{prom.url}/api/v1/label/__name__/values", timeout=10)
            return set(response.json()["data"])

        # the slowest (diagnose, settled beacons) take a few seconds; the test names the rest
        with contextlib.suppress(AssertionError):
            wait_for_sync(lambda: expected <= names(), timeout=60, interval=1.0)

        # a few scrapes more, so that rate() over the latest points has something to work on
        def scrapes() -> float:
            result = prom.query('count_over_time(up{job="app-monitor"}[30s])')
            return float(result[0]["value"][1]) if result else 0.0

        try:
            wait_for_sync(lambda: scrapes() >= 4, timeout=30, interval=0.5)
        except AssertionError:
            raise AssertionError(f"no scrapes: {prom.query('up')} {prom.log_tail()}") from None
        yield Run(prom, names())


def referenced() -> dict[str, set[str]]:
    """Metric names per dashboard query and rule (rule-recorded names and ALERTS left out)."""
    out = {where: promql_metric_names(query) for where, query in dashboard_queries()}
    rules, recorded = rule_expressions()
    for where, expr in rules:
        out[where] = promql_metric_names(expr) - recorded - {"ALERTS"}
    return out


def referenced_names() -> set[str]:
    return set().union(*referenced().values())


def after_a_regression_names() -> set[str]:
    """``monitor_release_regression`` exists only while a release regressed."""
    return {"monitor_release_regression"}


def sharded_only_names() -> set[str]:
    """Series a daemon exports only when sharded (shard.total > 1): the full run is not."""
    from monitor.app import shards

    return {v.name for v in vars(shards).values() if isinstance(v, MetricSpec)}


def test_dashboards_and_rules_use_only_exported_metrics(run: Run) -> None:
    exported = run.names | google_only_names() | sharded_only_names() | after_a_regression_names()
    assert "monitor_shard_up" in sharded_only_names()
    missing = {where: names - exported for where, names in referenced().items()}
    missing = {where: names for where, names in missing.items() if names}
    assert not missing, f"metrics the daemon does not export: {missing}"


def test_every_dashboard_query_runs_on_the_daemon_data(run: Run) -> None:
    google = google_only_names()
    empty = []
    for where, query in dashboard_queries():
        result = run.prom.query(query)  # raises on a PromQL error
        names = promql_metric_names(query)
        if result or names & google:
            continue
        empty.append(where)
    # these need data the run cannot make: stale sequences never reach 0.5, no wraparound…
    assert not empty, f"queries over metrics the run exported returned nothing: {empty}"

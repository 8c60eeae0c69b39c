"""The log drain on every reference body: exact metric values from each, and the edge
cases (L10 glued to the next frame, invalid UTF-8, embedded newline, empty message, a
retry with the same frame id and an extra L10 frame)."""

from __future__ import annotations

import time

import pytest
from heroku_drain_support import KiB, MiB, body, component, exposition
from support import metric

APP = "shop"


def fed(
    *names: str, **drain: object
) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    comp = component(**drain)  # type: ignore[arg-type]
    for name in names:
        comp.ingestor.ingest(APP, body(name), time.monotonic())
    return exposition(comp)


def frames(parsed: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[str, float]:
    return {
        dict(labels)["outcome"]: value
        for (name, labels), value in parsed.items()
        if name == "heroku_drain_frames_total"
    }


def test_router_sample() -> None:
    text, m = fed("01", routes=["/api/v1/orders", "/checkout", "/"])
    assert frames(m) == {"ok": 11}
    assert metric(m, "heroku_drain_lines_total", app=APP, kind="router", outcome="parsed") == 11
    get_ok = {"app": APP, "method": "GET", "status_class": "2xx"}
    assert metric(m, "heroku_router_requests_total", **get_ok, route="/api/v1/orders") == 1
    assert metric(m, "heroku_router_service_seconds_sum", **get_ok, route="/api/v1/orders") == (
        pytest.approx(0.087)
    )
    assert metric(m, "heroku_router_response_bytes_total", **get_ok, route="/api/v1/orders") == (
        15342
    )
    # "/" (Router 2.0, http2.0 tls1.3) and /healthz, /webhooks/stripe -> other
    assert metric(m, "heroku_router_requests_total", **get_ok, route="/") == 1
    assert metric(m, "heroku_router_requests_total", **get_ok, route="other") == 1
    post = {"app": APP, "method": "POST"}
    assert (
        metric(m, "heroku_router_requests_total", **post, status_class="3xx", route="/checkout")
        == 1
    )
    # H18 keeps the dyno's 200; /webhooks/stripe is a 200 too
    assert metric(m, "heroku_router_requests_total", **post, status_class="2xx", route="other") == 2
    # 5xx: H12 (/reports), H13 (/api/concordance), H10 (/favicon.ico)
    five = {"app": APP, "method": "GET", "status_class": "5xx", "route": "other"}
    assert metric(m, "heroku_router_requests_total", **five) == 3
    assert metric(m, "heroku_router_service_seconds_sum", **five) == pytest.approx(54.183)
    assert metric(m, "heroku_router_service_seconds_count", **five) == 2  # H10: service=
    assert metric(m, "heroku_router_service_seconds_bucket", **five, le="30.0") == 2
    assert metric(m, "heroku_router_service_seconds_bucket", **five, le="10.0") == 0
    assert metric(m, "heroku_router_connect_seconds_count", **five) == 1  # H12/H10: connect=
    h27 = {"app": APP, "method": "GET", "status_class": "4xx", "route": "other"}
    assert metric(m, "heroku_router_requests_total", **h27) == 1
    assert metric(m, "heroku_router_response_bytes_total", **h27) == 0  # bytes=
    for code in ("H10", "H12", "H13", "H18", "H27"):
        assert metric(m, "heroku_router_errors_total", app=APP, code=code) == 1, code
    # no raw path, request id, forwarded address, host or dyno ever becomes a label
    for secret in ("5b8f2c1e", "203.0.113.17", "/reports/export.csv", "shop.example.com", "web.1"):
        assert secret not in text


def test_router_service_buckets_put_500ms_on_a_bound() -> None:
    _, m = fed("01", routes=["/checkout"])
    labels = {"app": APP, "method": "POST", "status_class": "3xx", "route": "/checkout"}
    assert metric(m, "heroku_router_service_seconds_bucket", **labels, le="0.25") == 0
    assert metric(m, "heroku_router_service_seconds_bucket", **labels, le="0.5") == 1  # 412ms


def test_runtime_metrics_sample() -> None:
    _, m = fed("02")
    assert frames(m) == {"ok": 15}
    web1 = {"app": APP, "process": "web.1"}
    assert metric(m, "heroku_dyno_memory_bytes", **web1, kind="rss") == pytest.approx(296.85 * MiB)
    assert metric(m, "heroku_dyno_memory_bytes", **web1, kind="total") == pytest.approx(
        301.17 * MiB
    )
    assert metric(m, "heroku_dyno_memory_bytes", **web1, kind="cache") == pytest.approx(4.32 * MiB)
    assert metric(m, "heroku_dyno_memory_bytes", **web1, kind="swap") == 0
    assert metric(m, "heroku_dyno_memory_quota_bytes", **web1) == 512 * MiB
    assert metric(m, "heroku_dyno_load_average", **web1, window="1m") == 0.42
    assert metric(m, "heroku_dyno_load_average", **web1, window="5m") == 0.35
    assert metric(m, "heroku_dyno_load_average", **web1, window="15m") == 0.29
    assert metric(m, "heroku_dyno_memory_pages_total", **web1, direction="in") == 184329
    assert metric(m, "heroku_dyno_memory_pages_total", **web1, direction="out") == 107140
    worker = {"app": APP, "process": "worker.1"}
    assert metric(m, "heroku_dyno_memory_bytes", **worker, kind="swap") == pytest.approx(1033 * MiB)
    assert metric(m, "heroku_dyno_memory_quota_bytes", **worker) == 1024 * MiB
    assert metric(m, "heroku_dyno_load_average", **worker, window="15m") == 1.98
    # the 2016-style line (PRI 45) is the same kind of line
    web3 = {"app": APP, "process": "web.3"}
    assert metric(m, "heroku_dyno_memory_bytes", **web3, kind="total") == pytest.approx(
        154.85 * MiB
    )
    assert metric(m, "heroku_dyno_errors_total", app=APP, process="web.2", code="R14") == 1
    assert metric(m, "heroku_dyno_errors_total", **worker, code="R15") == 1
    assert metric(m, "heroku_dyno_exits_total", **worker, status="137") == 1
    changes = {"app": APP, "process": "worker.1"}
    assert (
        metric(m, "heroku_dyno_state_changes_total", **changes, **{"from": "up", "to": "crashed"})
        == 1
    )
    assert (
        metric(
            m, "heroku_dyno_state_changes_total", **changes, **{"from": "crashed", "to": "starting"}
        )
        == 1
    )


def test_postgres_sample() -> None:
    text, m = fed("03")
    assert frames(m) == {"ok": 6}
    leader = {"app": APP, "source": "DATABASE", "addon": "postgresql-curly-12345"}
    assert metric(m, "heroku_postgres_db_size_bytes", **leader) == 26219348792
    assert metric(m, "heroku_postgres_db_size_used_ratio", **leader) == 0.02767
    assert metric(m, "heroku_postgres_active_connections", **leader) == 92
    assert metric(m, "heroku_postgres_waiting_connections", **leader) == 1
    assert metric(m, "heroku_postgres_max_connections", **leader) == 500
    assert metric(m, "heroku_postgres_connections_used_ratio", **leader) == 0.184
    assert metric(m, "heroku_postgres_cache_hit_ratio", **leader, scope="index") == 0.99723
    assert metric(m, "heroku_postgres_cache_hit_ratio", **leader, scope="table") == 0.99118
    assert metric(m, "heroku_postgres_load_average", **leader, window="5m") == 0.325
    assert metric(m, "heroku_postgres_read_iops", **leader) == 12.417
    assert metric(m, "heroku_postgres_iops_used_ratio", **leader) == 0.04172
    assert metric(m, "heroku_postgres_tmp_disk_used_bytes", **leader) == 543600640
    assert metric(m, "heroku_postgres_memory_bytes", **leader, kind="total") == 16085844 * KiB
    assert metric(m, "heroku_postgres_memory_bytes", **leader, kind="postgres") == 187144 * KiB
    assert metric(m, "heroku_postgres_memory_used_ratio", **leader) == 0.98487
    assert metric(m, "heroku_postgres_wal_used_ratio", **leader) == 0.0801535074510631
    assert metric(m, "heroku_postgres_current_transaction", **leader) == 118736
    follower = {
        "app": APP,
        "source": "HEROKU_POSTGRESQL_PURPLE",
        "addon": "postgresql-contoured-67890",
    }
    assert metric(m, "heroku_postgres_follower_lag_commits", **follower) == 10441
    old = {"app": APP, "source": "DATABASE", "addon": ""}  # 2016: no addon=, floats
    assert metric(m, "heroku_postgres_db_size_bytes", **old) == 4347350804
    assert metric(m, "heroku_postgres_memory_bytes", **old, kind="total") == 15405636 * KiB
    assert metric(m, "heroku_postgres_memory_bytes", **old, kind="cached") == 14392920 * KiB
    bouncer = {"app": APP, "source": "pgbouncer", "addon": "postgresql-curly-12345"}
    assert metric(m, "heroku_pgbouncer_clients", **bouncer, state="active") == 56
    assert metric(m, "heroku_pgbouncer_servers", **bouncer, state="idle") == 16
    assert metric(m, "heroku_pgbouncer_avg_query_seconds", **bouncer) == pytest.approx(0.008751)
    assert metric(m, "heroku_pgbouncer_avg_sent_bytes_per_second", **bouncer) == 1339005
    # server log lines are counted, their SQL is no metric
    assert (
        metric(m, "heroku_drain_lines_total", app=APP, kind="postgres_log", outcome="ignored") == 2
    )
    assert "SELECT" not in text


def test_redis_sample() -> None:
    _, m = fed("04")
    assert frames(m) == {"ok": 3}
    current = {"app": APP, "source": "REDIS", "addon": "redis-rugged-24473"}
    assert metric(m, "heroku_redis_active_connections", **current) == 4
    assert metric(m, "heroku_redis_max_connections", **current) == 18
    assert metric(m, "heroku_redis_connections_used_ratio", **current) == 0.22222
    assert metric(m, "heroku_redis_memory_bytes", **current, kind="redis") == 5116080
    assert metric(m, "heroku_redis_memory_bytes", **current, kind="total") == 16167800 * KiB
    assert metric(m, "heroku_redis_hit_ratio", **current) == 0.0013079
    mauve = {"app": APP, "source": "HEROKU_REDIS_MAUVE", "addon": "redis-trapezoidal-46536"}
    assert metric(m, "heroku_redis_evicted_keys", **mauve) == 1273
    assert metric(m, "heroku_redis_memory_bytes", **mauve, kind="redis") == 343477584
    assert metric(m, "heroku_redis_write_iops", **mauve) == 54.758
    old = {"app": APP, "source": "REDIS", "addon": ""}
    assert metric(m, "heroku_redis_memory_bytes", **old, kind="total") == 15664332 * KiB
    assert metric(m, "heroku_redis_hit_ratio", **old) == 1


async def test_release_sample_deploys_rollbacks_and_boot_time() -> None:
    comp = component()
    comp.ingestor.ingest(APP, body("05"), time.monotonic())
    text, m = exposition(comp)
    assert frames(m) == {"ok": 20}
    assert metric(m, "heroku_release_info", app=APP, version="v125", commit="") == 1
    assert metric(m, "heroku_release_version", app=APP) == 125
    assert metric(m, "heroku_release_timestamp_seconds", app=APP) == pytest.approx(
        1796047434.754091
    )
    for kind, n in {
        "release": 3,
        "deploy": 1,
        "config": 1,
        "rollback": 1,
        "scale": 1,
        "build_started": 1,
        "build_succeeded": 1,
    }.items():
        assert metric(m, "heroku_platform_events_total", app=APP, kind=kind) == n, kind
    web1 = {"app": APP, "process": "web.1"}
    assert metric(m, "heroku_dyno_boot_seconds", **web1) == pytest.approx(1.607913, abs=1e-5)
    assert metric(m, "heroku_dyno_restart_seconds", **web1) == pytest.approx(4.170635, abs=1e-5)
    assert (
        metric(m, "heroku_dyno_restarts_total", app=APP, process="worker.1", reason="cycling") == 1
    )
    assert metric(m, "heroku_dyno_exits_total", **web1, status="143") == 1
    assert "example.com" not in text  # no user e-mail anywhere
    # the release log has each version once, with what made it
    await comp.start()
    await comp.flush()
    rows = {e.version: e for e in await comp.release_log.recent(APP)}
    assert set(rows) == {123, 124, 125}
    assert (rows[123].kind, rows[123].commit) == ("deploy", "60a874b3")
    assert rows[124].kind == "config" and "FEATURE_CHECKOUT_V2" in rows[124].description
    assert rows[125].kind == "rollback" and rows[125].description == "Rollback to v123"
    assert not any("@" in e.description for e in rows.values())
    await comp.stop()


def test_boot_crash_sample() -> None:
    comp = component(min_requests=1)
    comp.ingestor.ingest(APP, body("06"), time.monotonic())
    _, m = exposition(comp)
    assert frames(m) == {"ok": 11}
    assert metric(m, "heroku_release_info", app=APP, version="v126", commit="1a2b3c4d") == 1
    assert metric(m, "heroku_router_errors_total", app=APP, code="H20") == 1
    assert metric(m, "heroku_router_errors_total", app=APP, code="H10") == 1
    assert metric(m, "heroku_dyno_errors_total", app=APP, process="web.1", code="R10") == 1
    assert metric(m, "heroku_dyno_errors_total", app=APP, process="worker.2", code="R12") == 1
    assert metric(m, "heroku_dyno_exits_total", app=APP, process="web.1", status="137") == 1


async def test_boot_crash_window_series() -> None:
    comp = component(min_requests=1)
    comp.ingestor.ingest(APP, body("06"), comp.window_job._monotonic())
    samples = {(s.name, s.label_values[1:]): s.value for s in await comp.window_job.collect()}
    assert samples[("heroku_dyno_window_crashes", (APP, "web.1", "5m"))] == 1
    assert samples[("heroku_dyno_window_errors", (APP, "web.1", "R10", "5m"))] == 1
    assert samples[("heroku_router_window_requests", (APP, "5m"))] == 2
    assert samples[("heroku_router_window_5xx_ratio", (APP, "5m"))] == 1.0
    assert samples[("heroku_router_window_errors", (APP, "H20", "5m"))] == 1


def test_l2met_sample() -> None:
    _, m = fed("07")
    assert frames(m) == {"ok": 9}
    assert metric(m, "heroku_app_count_total", app=APP, metric="signups") == 1
    assert metric(m, "heroku_app_count_total", app=APP, metric="cache.miss") == 1  # bare key
    assert metric(m, "heroku_app_count_total", app=APP, metric="prod.worker.jobs.processed") == 25
    assert metric(m, "heroku_app_sample", app=APP, metric="queue.length", unit="") == 99
    assert metric(m, "heroku_app_sample", app=APP, metric="db.size", unit="bytes") == 100 * 1024**3
    assert metric(m, "heroku_app_sample", app=APP, metric="cache.size", unit="bytes") == 512 * MiB
    assert metric(m, "heroku_app_sample", app=APP, metric="clock.drift", unit="seconds") == -0.003
    db = {"app": APP, "metric": "db.latency", "unit": "seconds"}
    assert metric(m, "heroku_app_measure_sum", **db) == 0.004
    assert metric(m, "heroku_app_measure_bucket", **db, le="0.005") == 1
    assert metric(m, "heroku_app_measure_bucket", **db, le="0.0025") == 0
    assert (
        metric(m, "heroku_app_measure_sum", app=APP, metric="view.render", unit="seconds") == 0.0125
    )
    assert (
        metric(
            m, "heroku_app_measure_count", app=APP, metric="task.rake.db_migrate", unit="seconds"
        )
        == 1
    )
    # the Rails and JSON lines are app lines without metrics
    assert metric(m, "heroku_drain_lines_total", app=APP, kind="app", outcome="ignored") == 2
    assert metric(m, "heroku_drain_lines_total", app=APP, kind="app", outcome="parsed") == 7


def test_l2met_allow_list_and_cap() -> None:
    _, m = fed("07", l2met={"allow": ["db.*", "signups"], "max_metrics": 2})
    assert metric(m, "heroku_app_measure_count", app=APP, metric="db.latency", unit="seconds") == 1
    assert metric(m, "heroku_app_count_total", app=APP, metric="signups") == 1
    assert metric(m, "heroku_app_sample", app=APP, metric="db.size", unit="bytes") is None  # cap
    assert metric(m, "heroku_app_metrics_dropped_total", app=APP, reason="limit") == 1
    assert metric(m, "heroku_app_metrics_dropped_total", app=APP, reason="not_allowed") == 11


def test_edge_cases_sample() -> None:
    _, m = fed("08", routes=["/api/*"])
    assert frames(m) == {"ok": 8}
    # both L10 wordings, the first one glued to the next frame
    assert metric(m, "heroku_logplex_dropped_messages_total", app=APP) == 1234 + 57
    assert metric(m, "heroku_logplex_errors_total", app=APP, code="L10") == 2
    # the frame after the glued L10 is read whole
    changes = {"app": APP, "process": "web.1", "from": "starting", "to": "up"}
    assert metric(m, "heroku_dyno_state_changes_total", **changes) == 1
    assert metric(m, "heroku_drain_undecodable_lines_total", app=APP) == 1
    # empty message, UTF-8, invalid byte, traceback with its embedded newline: app lines
    assert metric(m, "heroku_drain_lines_total", app=APP, kind="app", outcome="ignored") == 4
    # a raw space and '=' in the quoted path
    route = {"app": APP, "method": "GET", "status_class": "2xx", "route": "/api/*"}
    assert metric(m, "heroku_router_requests_total", **route) == 1
    assert metric(m, "heroku_router_service_seconds_sum", **route) == 0.005


def test_retry_with_same_frame_id_counts_only_the_new_l10() -> None:
    from heroku_drain_support import headers

    comp = component()
    t = time.monotonic()
    first, retry = headers("02"), headers("09")
    assert first["Logplex-Frame-Id"] == retry["Logplex-Frame-Id"]
    key = (first["Logplex-Drain-Token"], first["Logplex-Frame-Id"])
    result = comp.ingestor.ingest(APP, body("02"), t)
    comp.endpoint.frame_ids.add(key, t, result.l10)
    counted = comp.endpoint.frame_ids.get(key, t + 1)
    assert counted is not None
    retried = comp.ingestor.ingest(APP, body("09"), t + 1, counted_l10=counted)
    _, m = exposition(comp)
    assert frames(m) == {"ok": 16, "duplicate": 15}
    assert metric(m, "heroku_logplex_dropped_messages_total", app=APP) == 3
    assert metric(m, "heroku_dyno_errors_total", app=APP, process="web.2", code="R14") == 1
    # a second retry of the same batch counts its L10 no more
    comp.endpoint.frame_ids.add(key, t + 1, retried.l10)
    comp.ingestor.ingest(
        APP, body("09"), t + 2, counted_l10=comp.endpoint.frame_ids.get(key, t + 2)
    )
    _, m = exposition(comp)
    assert metric(m, "heroku_logplex_dropped_messages_total", app=APP) == 3


def test_fast_router_fields_agree_with_the_general_parser() -> None:
    from collectors.heroku_logs.framing import split_frames
    from collectors.heroku_logs.router import fast_fields, slow_fields

    lines = [
        m.decode(errors="replace").split(" ", 6)[6]
        for name in ("01", "06", "08")
        for m in split_frames(body(name))[0]
        if b" heroku router - " in m
    ]
    assert len(lines) == 14
    for line in lines:
        assert fast_fields(line) == slow_fields(line), line
    # a quoted path holding what looks like fields does not fool either
    tricky = (
        'at=info method=GET path="/x status=999 bytes=1" host=h '
        "connect=1ms service=2ms status=200 bytes=3"
    )
    assert fast_fields(tricky) == ("GET", "/x status=999 bytes=1", "1ms", "2ms", "200", "3", None)

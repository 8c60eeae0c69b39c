"""Build the Grafana dashboards in deploy/grafana/dashboards/ from the definitions below.

    uv run python deploy/grafana/build_dashboards.py

Every panel queries a ``${datasource}`` variable (any Prometheus-compatible data source:
Grafana Cloud, Mimir, Prometheus). It filters on ``job`` (the scrape job, or the push's
``job`` label, ``app-monitor`` by default). It uses only metric names the daemon
exports; tests/deploy/test_grafana_dashboards.py checks that against a real run. A test
also rebuilds the JSON and compares it with the committed files, so edit this script,
not the JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
J = 'job=~"$job"'
JT = 'job=~"$job", target=~"$target"'
RATE = "$__rate_interval"


@dataclass
class Q:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False
    heatmap: bool = False
    """Histogram buckets for a heatmap panel (``format: heatmap``, one row per ``le``)."""


@dataclass
class P:
    """A panel: ``kind`` is timeseries, stat, gauge, table, heatmap or row."""

    title: str
    queries: list[Q] = field(default_factory=list)
    kind: str = "timeseries"
    unit: str = "short"
    w: int = 8
    h: int = 8
    description: str = ""
    thresholds: list[tuple[float, str]] = field(default_factory=list)
    mappings: dict[str, str] = field(default_factory=dict)
    stack: bool = False
    minimum: float | None = None
    maximum: float | None = None
    repeat: str = ""
    """For a row: the variable it repeats for (one copy of the row per value)."""


def row(title: str) -> P:
    return P(title, kind="row", w=24, h=1)


def up_stat(title: str, expr: str, down: str = "DOWN", up: str = "up", w: int = 4) -> P:
    """A 0/1 health stat: red with ``down`` at 0, green with ``up`` at 1."""
    return P(title, [Q(expr, "{{target}}")], "stat", w=w, h=4,
             mappings={"0": down, "1": up}, thresholds=[(0, "red"), (1, "green")])  # fmt: skip


def hit_ratio_stat(metric: str) -> P:
    return P("Hit ratio (last interval)", [Q(f"{metric}{{{J}}}", "{{target}}")], "stat",
             "percentunit", w=4, h=4, thresholds=[(0, "red"), (0.85, "green")])  # fmt: skip


def variable_query(name: str, query: str, label: str, *, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "refresh": 2,
        "includeAll": multi,
        "multi": multi,
        "allValue": ".+",
        "current": {},
        "sort": 1,
        "hide": 0,
    }


def datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
    }


def _field_config(p: P) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit}
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for value, color in p.thresholds]
    defaults["thresholds"] = {"mode": "absolute", "steps": steps}
    if p.minimum is not None:
        defaults["min"] = p.minimum
    if p.maximum is not None:
        defaults["max"] = p.maximum
    if p.mappings:
        defaults["mappings"] = [
            {
                "type": "value",
                "options": {
                    value: {"text": text, "index": i}
                    for i, (value, text) in enumerate(p.mappings.items())
                },
            }
        ]
    if p.kind == "timeseries":
        custom: dict[str, Any] = {"lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
        if p.stack:
            custom["stacking"] = {"mode": "normal", "group": "A"}
        if p.thresholds:
            custom["thresholdsStyle"] = {"mode": "dashed"}
        defaults["custom"] = custom
    return {"defaults": defaults, "overrides": []}


def _options(p: P) -> dict[str, Any]:
    if p.kind == "timeseries":
        return {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if p.kind == "heatmap":
        return {
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential",
                      "exponent": 0.5, "steps": 64},
            "yAxis": {"axisPlacement": "left", "unit": p.unit},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"mode": "single", "yHistogram": True},
            "legend": {"show": True},
        }  # fmt: skip
    if p.kind in ("stat", "gauge"):
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "auto",
        }
    return {"showHeader": True, "cellHeight": "sm"}


def panels(items: list[P]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    x = y = line_height = 0
    for pid, p in enumerate(items, start=1):
        if p.kind == "row" or x + p.w > 24:
            x, y = 0, y + line_height
            line_height = 0
        grid = {"x": x, "y": y, "w": p.w, "h": p.h}
        if p.kind == "row":
            out.append({"id": pid, "type": "row", "title": p.title, "collapsed": False,
                        "gridPos": grid, "panels": []})  # fmt: skip
            if p.repeat:
                out[-1]["repeat"] = p.repeat
            y += 1
            continue
        targets = []
        for i, q in enumerate(p.queries):
            target: dict[str, Any] = {
                "refId": chr(ord("A") + i),
                "datasource": DS,
                "expr": q.expr,
                "legendFormat": q.legend or "__auto",
                "range": not (q.instant or q.table),
                "instant": q.instant or q.table,
            }
            if q.table:
                target["format"] = "table"
            if q.heatmap:
                target["format"] = "heatmap"
            targets.append(target)
        panel: dict[str, Any] = {
            "id": pid,
            "type": p.kind,
            "title": p.title,
            "datasource": DS,
            "gridPos": grid,
            "targets": targets,
            "fieldConfig": _field_config(p),
            "options": _options(p),
        }
        if p.description:
            panel["description"] = p.description
        if p.kind == "table":
            hidden = {"Time": True, "__name__": True, "job": True, "instance": True}
            hidden.update({f"Value #{chr(ord('A') + i)}": True for i in range(1, len(targets))})
            panel["transformations"] = [
                {"id": "merge", "options": {}},  # joins the queries on their common labels
                {"id": "organize", "options": {"excludeByName": hidden}},
            ]
        out.append(panel)
        x += p.w
        line_height = max(line_height, p.h)
    return out


DEPLOY_ANNOTATION: dict[str, Any] = {
    "name": "Deploys",
    "datasource": {"type": "prometheus", "uid": "${datasource}"},
    "enable": True,
    "iconColor": "#8AB8FF",
    # one point per release, its value the release time in ms ("series value as timestamp")
    "expr": "max by (app, version, commit, kind) (monitor_deploy_timestamp_seconds) * 1000",
    "step": "60s",
    "useValueForTime": True,
    "titleFormat": "{{app}} {{version}}",
    "textFormat": "{{kind}} {{commit}}",
    "tagKeys": "app,version",
}
"""Every dashboard draws deploy markers (``monitor_deploy_timestamp_seconds``)."""


def dashboard(
    uid: str,
    title: str,
    variables: list[dict[str, Any]],
    items: list[P],
    annotations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": "app-monitor, built by deploy/grafana/build_dashboards.py",
        "tags": ["app-monitor"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "annotations": {"list": [DEPLOY_ANNOTATION, *(annotations or [])]},
        "links": [
            {
                "title": "app-monitor",
                "type": "dashboards",
                "tags": ["app-monitor"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": panels(items),
    }


def job_variable(metric: str) -> dict[str, Any]:
    return variable_query("job", f"label_values({metric}, job)", "Job")


def ratio_of_rates(hits: str, misses: str, selector: str = J, by: str = "target") -> str:
    """hits / (hits + misses) over rates: a ratio that stays right across counter resets."""
    h = f"sum by ({by}) (rate({hits}{{{selector}}}[{RATE}]))"
    m = f"sum by ({by}) (rate({misses}{{{selector}}}[{RATE}]))"
    return f"{h}\n/ ({h} + {m})"


# -- PostgreSQL ----------------------------------------------------------------------------

STMT = f'{JT}, datname=~"$datname"'


def postgres() -> dict[str, Any]:
    def top(metric: str) -> str:
        return f"topk(10, sum by (target, datname, queryid) (rate({metric}{{{STMT}}}[{RATE}])))"

    def per_query(metric: str) -> str:
        return f"sum by (target, datname, queryid) (rate({metric}{{{STMT}}}[{RATE}]))"

    info = f"pg_stat_statements_query_info{{{JT}}}"
    items = [
        row("Servers"),
        up_stat("Up", f"pg_up{{{JT}}}"),
        P(
            "Role",
            [Q(f"pg_in_recovery{{{JT}}}", "{{target}}")],
            "stat",
            w=4,
            h=4,
            mappings={"0": "primary", "1": "standby"},
        ),
        P(
            "Connections used",
            [Q(f"pg_connections_utilization_ratio{{{JT}}}", "{{target}}")],
            "gauge",
            "percentunit",
            w=4,
            h=4,
            minimum=0,
            maximum=1,
            thresholds=[(0.75, "orange"), (0.9, "red")],
        ),
        P(
            "Blocked sessions",
            [Q(f"pg_blocked_sessions{{{JT}}}", "{{target}}")],
            "stat",
            w=4,
            h=4,
            thresholds=[(1, "orange")],
        ),
        P(
            "Heap cache hit",
            [Q(f'pg_cache_hit_ratio{{{JT}, scope="heap"}}', "{{target}}")],
            "stat",
            "percentunit",
            w=4,
            h=4,
            thresholds=[(0, "red"), (0.98, "green")],
        ),
        P(
            "Server version",
            [Q(f"pg_server_version_num{{{JT}}}", "{{target}}")],
            "stat",
            "none",
            w=4,
            h=4,
        ),
        row("Top queries (pg_stat_statements)"),
        P(
            "Top 10 queries by time spent",
            [
                Q(top("pg_stat_statements_exec_seconds_total"), table=True),
                Q(info, table=True),
            ],
            "table",
            "s",
            w=24,
            h=9,
            description="Seconds of execution per second (busy backends), now. The query "
            "text column needs statements.include_query_text; statements outside the top N "
            'are summed as queryid="other".',
        ),
        P(
            "Time spent per second",
            [Q(top("pg_stat_statements_exec_seconds_total"), "{{target}} {{datname}} {{queryid}}")],
            unit="s",
        ),
        P(
            "Calls per second",
            [Q(top("pg_stat_statements_calls_total"), "{{target}} {{datname}} {{queryid}}")],
            unit="reqps",
        ),
        P(
            "Mean time per call",
            [
                Q(
                    "topk(10,\n  "
                    + per_query("pg_stat_statements_exec_seconds_total")
                    + "\n  / "
                    + per_query("pg_stat_statements_calls_total")
                    + "\n)",
                    "{{target}} {{datname}} {{queryid}}",
                )
            ],
            unit="s",
        ),
        P(
            "Rows per second",
            [Q(top("pg_stat_statements_rows_total"), "{{target}} {{datname}} {{queryid}}")],
        ),
        P(
            "Shared blocks read from disk per second",
            [
                Q(
                    top("pg_stat_statements_shared_blks_read_total"),
                    "{{target}} {{datname}} {{queryid}}",
                )
            ],
        ),
        P(
            "Statement cache hit ratio",
            [
                Q(
                    ratio_of_rates(
                        "pg_stat_statements_shared_blks_hit_total",
                        "pg_stat_statements_shared_blks_read_total",
                        STMT,
                        "target, datname",
                    ),
                    "{{target}} {{datname}}",
                )
            ],
            unit="percentunit",
            maximum=1,
        ),
        row("Connections"),
        P(
            "Connections by state",
            [Q(f"sum by (target, state) (pg_connections{{{JT}}})", "{{target}} {{state}}")],
            stack=True,
        ),
        P(
            "Connections used of max_connections",
            [Q(f"pg_connections_utilization_ratio{{{JT}}}", "{{target}}")],
            unit="percentunit",
            minimum=0,
            maximum=1,
            thresholds=[(0.75, "orange"), (0.9, "red")],
        ),
        P(
            "Oldest transaction, idle in transaction, longest query",
            [
                Q(f"pg_oldest_transaction_seconds{{{JT}}}", "{{target}} transaction"),
                Q(
                    f"pg_oldest_idle_in_transaction_seconds{{{JT}}}",
                    "{{target}} idle in transaction",
                ),
                Q(f"pg_longest_query_seconds{{{JT}}}", "{{target}} query"),
            ],
            unit="s",
        ),
        row("Replication"),
        P(
            "Standbys connected",
            [Q(f"pg_replication_standbys{{{JT}}}", "{{target}}")],
            "stat",
            w=4,
            thresholds=[(0, "red"), (1, "green")],
        ),
        P(
            "Replication lag (bytes, on the primary)",
            [Q(f"pg_replication_lag_bytes{{{JT}}}", "{{target}} → {{standby}}")],
            unit="bytes",
            w=10,
        ),
        P(
            "Replication lag (seconds, on the primary)",
            [Q(f"pg_replication_lag_seconds{{{JT}}}", "{{target}} → {{standby}} {{kind}}")],
            unit="s",
            w=10,
        ),
        P(
            "WAL receiver (on the standby)",
            [Q(f"pg_standby_receiver_up{{{JT}}}", "{{target}}")],
            "stat",
            w=4,
            mappings={"0": "DOWN", "1": "up"},
            thresholds=[(0, "red"), (1, "green")],
        ),
        P(
            "Received but not replayed (standby)",
            [Q(f"pg_standby_replay_lag_bytes{{{JT}}}", "{{target}}")],
            unit="bytes",
            w=10,
        ),
        P(
            "Age of the last replayed transaction (standby)",
            [Q(f"pg_standby_last_replay_age_seconds{{{JT}}}", "{{target}}")],
            unit="s",
            w=10,
            description="Grows while the primary is idle; compare with the byte lag.",
        ),
        row("Cache, vacuum, diagnose"),
        P(
            "Cache hit ratio (last interval)",
            [Q(f"pg_cache_hit_ratio{{{JT}}}", "{{target}} {{scope}}")],
            unit="percentunit",
            maximum=1,
            thresholds=[(0.98, "green")],
        ),
        P(
            "Blocks read from disk per second",
            [
                Q(
                    f"sum by (target, datname) (rate(pg_blks_read_total{{{JT}}}[{RATE}]))",
                    "{{target}} {{datname}}",
                )
            ],
        ),
        P(
            "Transaction ID wraparound",
            [Q(f"pg_database_xid_wraparound_ratio{{{JT}}}", "{{target}} {{datname}}")],
            unit="percentunit",
            thresholds=[(0.5, "orange"), (0.8, "red")],
        ),
        P("Autovacuum workers", [Q(f"pg_autovacuum_workers{{{JT}}}", "{{target}}")]),
        P("Unused indexes", [Q(f"pg_unused_indexes{{{JT}}}", "{{target}} {{datname}}")], "stat"),
        P(
            "Sequences closest to exhaustion",
            [Q(f"topk(5, pg_sequence_used_ratio{{{JT}}})", "{{target}} {{sequence}}")],
            unit="percentunit",
        ),
    ]
    variables = [
        job_variable("pg_up"),
        variable_query("target", 'label_values(pg_up{job=~"$job"}, target)', "Server"),
        variable_query(
            "datname",
            'label_values(pg_connections{job=~"$job", target=~"$target"}, datname)',
            "Database",
        ),
    ]
    return dashboard("app-monitor-postgres", "app-monitor / PostgreSQL overview", variables, items)


# -- caches ----------------------------------------------------------------------------------


def caches() -> dict[str, Any]:
    items = [
        row("PgBouncer"),
        up_stat("Up", f"pgbouncer_up{{{J}}}"),
        P(
            "Client connections used",
            [Q(f"pgbouncer_client_utilization_ratio{{{J}}}", "{{target}}")],
            "gauge",
            "percentunit",
            w=4,
            h=4,
            minimum=0,
            maximum=1,
            thresholds=[(0.75, "orange"), (0.9, "red")],
        ),
        P(
            "Clients waiting",
            [
                Q(
                    "sum by (target, database, user) "
                    f'(pgbouncer_pool_clients{{{J}, state="waiting"}})',
                    "{{target}} {{database}}/{{user}}",
                )
            ],
            w=16,
            h=4,
            thresholds=[(1, "orange")],
        ),
        P(
            "Clients by state",
            [Q(f"pgbouncer_pool_clients{{{J}}}", "{{database}}/{{user}} {{state}}")],
            stack=True,
        ),
        P(
            "Servers by state",
            [Q(f"pgbouncer_pool_servers{{{J}}}", "{{database}}/{{user}} {{state}}")],
            stack=True,
        ),
        P(
            "Longest client wait",
            [Q(f"pgbouncer_pool_max_wait_seconds{{{J}}}", "{{database}}/{{user}}")],
            unit="s",
            thresholds=[(1, "orange")],
        ),
        P(
            "Pool utilisation",
            [Q(f"pgbouncer_pool_utilization_ratio{{{J}}}", "{{database}}/{{user}}")],
            unit="percentunit",
            maximum=1,
        ),
        P(
            "Queries and transactions per second",
            [
                Q(f"pgbouncer_queries_per_second{{{J}}}", "{{database}} queries"),
                Q(f"pgbouncer_transactions_per_second{{{J}}}", "{{database}} transactions"),
            ],
            unit="ops",
        ),
        P(
            "Average query time",
            [Q(f"pgbouncer_average_query_seconds{{{J}}}", "{{database}}")],
            unit="s",
        ),
        row("Redis"),
        up_stat("Up", f"redis_up{{{J}}}"),
        hit_ratio_stat("redis_cache_hit_ratio"),
        P(
            "Memory used of maxmemory",
            [Q(f"redis_memory_used_ratio{{{J}}}", "{{target}}")],
            "gauge",
            "percentunit",
            w=4,
            h=4,
            minimum=0,
            maximum=1,
            thresholds=[(0.8, "orange"), (0.95, "red")],
        ),
        P("Connected clients", [Q(f"redis_connected_clients{{{J}}}", "{{target}}")], w=12, h=4),
        P(
            "Hit ratio",
            [
                Q(
                    ratio_of_rates("redis_keyspace_hits_total", "redis_keyspace_misses_total"),
                    "{{target}}",
                )
            ],
            unit="percentunit",
            maximum=1,
            thresholds=[(0.85, "green")],
        ),
        P(
            "Memory",
            [
                Q(f"redis_memory_used_bytes{{{J}}}", "{{target}} used"),
                Q(f"redis_memory_max_bytes{{{J}}}", "{{target}} maxmemory"),
            ],
            unit="bytes",
        ),
        P(
            "Evictions and expirations per second",
            [
                Q(f"rate(redis_evicted_keys_total{{{J}}}[{RATE}])", "{{target}} evicted"),
                Q(f"rate(redis_expired_keys_total{{{J}}}[{RATE}])", "{{target}} expired"),
            ],
        ),
        row("Memcached"),
        up_stat("Up", f"memcached_up{{{J}}}"),
        hit_ratio_stat("memcached_cache_hit_ratio"),
        P(
            "Memory used of the limit",
            [Q(f"memcached_memory_used_ratio{{{J}}}", "{{target}}")],
            "gauge",
            "percentunit",
            w=4,
            h=4,
            minimum=0,
            maximum=1,
        ),
        P("Connections", [Q(f"memcached_connections{{{J}}}", "{{target}}")], w=12, h=4),
        P(
            "Hit ratio",
            [
                Q(
                    ratio_of_rates("memcached_get_hits_total", "memcached_get_misses_total"),
                    "{{target}}",
                )
            ],
            unit="percentunit",
            maximum=1,
            thresholds=[(0.85, "green")],
        ),
        P(
            "Evictions per second",
            [Q(f"rate(memcached_evictions_total{{{J}}}[{RATE}])", "{{target}}")],
        ),
        P("Items", [Q(f"memcached_items{{{J}}}", "{{target}}")]),
    ]
    return dashboard("app-monitor-caches", "app-monitor / PgBouncer, Redis, Memcached",
                     [job_variable("monitor_build_info")], items)  # fmt: skip


# -- Core Web Vitals -------------------------------------------------------------------------

CRUX = f'{J}, origin=~"$origin", form_factor=~"$form_factor"'
GOOD = {"lcp": 2.5, "inp": 0.2, "fcp": 1.8, "ttfb": 0.8}


def rum_quantile(name: str) -> str:
    return f"histogram_quantile(0.75, sum by (le, route) (rate({name}_bucket{{{J}}}[{RATE}])))"


def web_vitals() -> dict[str, Any]:
    crux = [
        P(
            f"{metric.upper()} p75 (CrUX, 28 days)",
            [Q(f'crux_p75_seconds{{{CRUX}, metric="{metric}"}}', "{{origin}} {{form_factor}}")],
            unit="s",
            thresholds=[(limit, "orange")],
        )
        for metric, limit in GOOD.items()
    ]
    items = [
        row("Field data (Chrome UX Report)"),
        *crux,
        P(
            "CLS p75 (CrUX, 28 days)",
            [Q(f"crux_cls_p75{{{CRUX}}}", "{{origin}} {{form_factor}}")],
            unit="none",
            thresholds=[(0.1, "orange")],
        ),
        P(
            "Share of good experiences",
            [Q(f"crux_good_ratio{{{CRUX}}}", "{{origin}} {{form_factor}} {{metric}}")],
            unit="percentunit",
            maximum=1,
        ),
        P(
            "CrUX has data",
            [Q(f"crux_data_available{{{CRUX}}}", "{{origin}} {{form_factor}}")],
            "stat",
            mappings={"0": "no data", "1": "yes"},
        ),
        row("Real users (web-vitals beacons)"),
        *[
            P(
                f"{title} p75 by route",
                [Q(rum_quantile(name), "{{route}}")],
                unit=unit,
                thresholds=[(limit, "orange")],
            )
            for title, name, unit, limit in (
                ("LCP", "webvitals_lcp_seconds", "s", 2.5),
                ("INP", "webvitals_inp_seconds", "s", 0.2),
                ("CLS", "webvitals_cls", "none", 0.1),
                ("FCP", "webvitals_fcp_seconds", "s", 1.8),
                ("TTFB", "webvitals_ttfb_seconds", "s", 0.8),
            )
        ],
        P(
            "Share of good LCPs by route",
            [
                Q(
                    "sum by (route) "
                    f'(rate(webvitals_lcp_seconds_bucket{{{J}, le="2.5"}}[{RATE}]))\n'
                    f"/ sum by (route) (rate(webvitals_lcp_seconds_count{{{J}}}[{RATE}]))",
                    "{{route}}",
                )
            ],
            unit="percentunit",
            maximum=1,
        ),
        P(
            "p75 over the alert window (what the Rum* rules see)",
            [Q(f"webvitals_window_p75_seconds{{{J}}}", "{{route}} {{metric}} ({{window}})")],
            unit="s",
        ),
        P(
            "CLS p75 over the alert window",
            [Q(f"webvitals_window_cls_p75{{{J}}}", "{{route}} ({{window}})")],
            unit="none",
            thresholds=[(0.1, "orange")],
        ),
        P(
            "Beacons per second",
            [Q(f"sum by (outcome) (rate(webvitals_beacons_total{{{J}}}[{RATE}]))", "{{outcome}}")],
            unit="reqps",
            stack=True,
        ),
        P(
            "Rejected beacons per second",
            [Q(f"sum by (reason) (rate(webvitals_rejected_total{{{J}}}[{RATE}]))", "{{reason}}")],
            unit="reqps",
        ),
        row("Lab (PageSpeed Insights)"),
        P(
            "Performance score",
            [Q(f"psi_performance_score{{{J}}}", "{{target}} {{strategy}}")],
            unit="percentunit",
            maximum=1,
        ),
        P(
            "Lab timings",
            [Q(f"psi_lab_seconds{{{J}}}", "{{target}} {{strategy}} {{metric}}")],
            unit="s",
        ),
        P("Lab CLS", [Q(f"psi_lab_cls{{{J}}}", "{{target}} {{strategy}}")], unit="none"),
        row("HTTP probes"),
        P(
            "Probe success",
            [Q(f"probe_success{{{J}}}", "{{target}}")],
            "stat",
            mappings={"0": "FAIL", "1": "ok"},
            thresholds=[(0, "red"), (1, "green")],
        ),
        P(
            "Probe duration",
            [Q(f"probe_duration_seconds{{{J}}}", "{{target}}")],
            unit="s",
            thresholds=[(0.5, "orange")],
        ),
        P("HTTP status", [Q(f"probe_http_status_code{{{J}}}", "{{target}}")], "stat", unit="none"),
        P(
            "Certificate expires in",
            [Q(f"probe_ssl_earliest_cert_expiry{{{J}}} - time()", "{{target}}")],
            "stat",
            unit="s",
            thresholds=[(0, "red"), (14 * 86400, "orange"), (30 * 86400, "green")],
        ),
        P(
            "Error budget left (SLO)",
            [Q(f"probe_slo_error_budget_remaining_ratio{{{J}}}", "{{target}}")],
            "stat",
            unit="percentunit",
            thresholds=[(0, "red"), (0.25, "orange"), (0.5, "green")],
        ),
    ]
    variables = [
        job_variable("monitor_build_info"),
        variable_query(
            "origin", 'label_values(crux_data_available{job=~"$job"}, origin)', "Origin"
        ),
        variable_query(
            "form_factor",
            'label_values(crux_data_available{job=~"$job"}, form_factor)',
            "Form factor",
        ),
    ]
    return dashboard("app-monitor-web-vitals", "app-monitor / Core Web Vitals and probes",
                     variables, items)  # fmt: skip


# -- the daemon ------------------------------------------------------------------------------


def daemon() -> dict[str, Any]:
    items = [
        row("Collectors"),
        P(
            "Version",
            [Q(f"monitor_build_info{{{J}}}", "{{instance}} {{version}}")],
            "stat",
            w=6,
            h=4,
        ),
        P(
            "Collectors failing",
            [Q(f"count(monitor_collector_up{{{J}}} == 0) or vector(0)")],
            "stat",
            w=6,
            h=4,
            thresholds=[(1, "red")],
        ),
        P(
            "Alerts firing",
            [Q(f'sum(monitor_alerts{{{J}, state="firing"}})')],
            "stat",
            w=6,
            h=4,
            thresholds=[(1, "red")],
        ),
        P(
            "Notifications pending",
            [Q(f"sum(monitor_outbox_pending{{{J}}})")],
            "stat",
            w=6,
            h=4,
            thresholds=[(1, "orange")],
        ),
        P(
            "Collector up",
            [Q(f"monitor_collector_up{{{J}}}", "{{collector}} {{target}}")],
            minimum=0,
            maximum=1,
        ),
        P(
            "Since the last successful run",
            [
                Q(
                    f"time() - monitor_collector_last_success_timestamp_seconds{{{J}}}",
                    "{{collector}} {{target}}",
                )
            ],
            unit="s",
        ),
        P(
            "Run duration",
            [Q(f"monitor_collector_duration_seconds{{{J}}}", "{{collector}} {{target}}")],
            unit="s",
        ),
        P(
            "Runs per second by outcome",
            [
                Q(
                    f"sum by (status) (rate(monitor_collector_runs_total{{{J}}}[{RATE}]))",
                    "{{status}}",
                )
            ],
            unit="ops",
            stack=True,
            w=24,
        ),
        row("Alerting"),
        P("Alerts by state and severity", [Q(f"monitor_alerts{{{J}}}", "{{state}} {{severity}}")]),
        P(
            "Notifications per second",
            [
                Q(
                    f"sum by (receiver, status) (rate(monitor_notifications_total{{{J}}}[{RATE}]))",
                    "{{receiver}} {{status}}",
                )
            ],
            unit="ops",
        ),
        P(
            "Notification latency p95",
            [
                Q(
                    f"histogram_quantile(0.95, sum by (le, receiver) "
                    f"(rate(monitor_notification_latency_seconds_bucket{{{J}}}[{RATE}])))",
                    "{{receiver}}",
                )
            ],
            unit="s",
        ),
        P(
            "Receiver up",
            [Q(f"monitor_receiver_up{{{J}}}", "{{receiver}}")],
            "stat",
            mappings={"0": "BROKEN", "1": "ok"},
            thresholds=[(0, "red"), (1, "green")],
        ),
        P(
            "Leader (delivers notifications)",
            [Q(f"monitor_alerting_leader{{{J}}}", "{{instance}}")],
            "stat",
            mappings={"0": "standby", "1": "leader"},
        ),
        P(
            "Rule evaluation time",
            [Q(f"monitor_rule_evaluation_seconds{{{J}}}", "{{instance}}")],
            unit="s",
        ),
        row("remote_write push (worker shape)"),
        P(
            "Samples per second",
            [
                Q(
                    f"sum by (status) (rate(monitor_remote_write_samples_total{{{J}}}[{RATE}]))",
                    "{{status}}",
                ),
                Q(
                    f"sum(rate(monitor_remote_write_dropped_samples_total{{{J}}}[{RATE}]))",
                    "dropped",
                ),
            ],
            unit="ops",
        ),
        P(
            "Queue",
            [
                Q(f"monitor_remote_write_queue_samples{{{J}}}", "{{instance}} queued"),
                Q(f"monitor_remote_write_queue_max_samples{{{J}}}", "{{instance}} bound"),
            ],
        ),
        P(
            "Since the last accepted push",
            [
                Q(
                    f"time() - monitor_remote_write_last_success_timestamp_seconds{{{J}}}",
                    "{{instance}}",
                )
            ],
            unit="s",
            thresholds=[(300, "red")],
        ),
        P(
            "Requests per second by outcome",
            [
                Q(
                    f"sum by (status) (rate(monitor_remote_write_requests_total{{{J}}}[{RATE}]))",
                    "{{status}}",
                )
            ],
            unit="reqps",
        ),
        P(
            "Bytes pushed per second",
            [Q(f"rate(monitor_remote_write_sent_bytes_total{{{J}}}[{RATE}])", "{{instance}}")],
            unit="Bps",
        ),
        P("Series per push", [Q(f"monitor_remote_write_series{{{J}}}", "{{instance}}")]),
    ]
    return dashboard("app-monitor-daemon", "app-monitor / the daemon",
                     [job_variable("monitor_build_info")], items)  # fmt: skip


QJ = f'{J}, query=~"$query"'


def custom_queries() -> dict[str, Any]:
    """Custom SQL queries (``queries:``): their health, and a row template repeated per
    custom metric (the ``metric`` variable: every ``app_*`` name by default)."""
    items = [
        row("Query health"),
        P(
            "Duration of the last run",
            [Q(f"monitor_query_duration_seconds{{{QJ}}}", "{{query}} {{target}}")],
            unit="s",
            w=8,
        ),
        P("Rows read", [Q(f"monitor_query_rows{{{QJ}}}", "{{query}} {{target}}")], w=8),
        P(
            "Errors by reason",
            [
                Q(
                    f"sum by (query, reason) (increase(monitor_query_errors_total"
                    f"{{{QJ}}}[{RATE}]))",
                    "{{query}} {{reason}}",
                )
            ],
            w=8,
            description="Failed runs: timeout, lock_timeout, read_only, permission, connection, "
            "query, columns",
        ),
        P(
            "Query up",
            [
                Q(
                    f'monitor_collector_up{{{J}, collector=~"query:$query"}}',
                    "{{collector}} {{target}}",
                )
            ],
            "stat",
            w=12,
            h=4,
            mappings={"0": "FAILING", "1": "ok"},
            thresholds=[(0, "red"), (1, "green")],
        ),
        P(
            "Rows and samples dropped (caps, NULLs)",
            [
                Q(
                    f"sum by (query) (increase(monitor_query_rows_dropped_total{{{QJ}}}[{RATE}]))",
                    "{{query}} rows over max_rows",
                ),
                Q(
                    f"sum by (query, reason) (increase(monitor_query_samples_dropped_total{{{QJ}}}"
                    f"[{RATE}]))",
                    "{{query}} {{reason}}",
                ),
            ],
            w=12,
            h=4,
        ),
        P("$metric", kind="row", w=24, h=1, repeat="metric"),
        P(
            "$metric",
            [Q(f'{{__name__=~"$metric", {J}}}', "{{target}} {{__name__}}")],
            w=24,
            description="One row per custom metric chosen in the metric variable",
        ),
    ]
    variables = [
        job_variable("monitor_query_duration_seconds"),
        variable_query(
            "query", f"label_values(monitor_query_duration_seconds{{{J}}}, query)", "Query"
        ),
        variable_query("metric", f'label_values({{__name__=~"app_.+", {J}}}, __name__)', "Metric"),
    ]
    return dashboard("app-monitor-queries", "app-monitor / custom queries", variables, items)


# -- the Heroku app, from its log drain ----------------------------------------------------

HA = f'{J}, app=~"$app"'
SERVICE = "heroku_router_service_seconds"


def service_quantile(q: float, by: str = "app") -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({SERVICE}_bucket{{{HA}}}[{RATE}])))"


def heroku() -> dict[str, Any]:
    items = [
        row("Requests (Heroku router)"),
        P(
            "Requests per second",
            [Q(f"sum by (app) (rate(heroku_router_requests_total{{{HA}}}[{RATE}]))", "{{app}}")],
            "stat",
            "reqps",
            w=6,
            h=4,
        ),
        P(
            "Mean service time",
            [
                Q(
                    f"sum by (app) (rate({SERVICE}_sum{{{HA}}}[{RATE}]))\n"
                    f"/ sum by (app) (rate({SERVICE}_count{{{HA}}}[{RATE}]))",
                    "{{app}}",
                )
            ],
            "stat",
            "s",
            w=6,
            h=4,
            thresholds=[(0.5, "red")],
            description="Router service= time (the dyno's time to answer); target < 500 ms.",
        ),
        P(
            "p95 service time (rule window)",
            [Q(f"heroku_router_window_service_p95_seconds{{{HA}}}", "{{app}} ({{window}})")],
            "stat",
            "s",
            w=6,
            h=4,
            thresholds=[(0.5, "red")],
            description="What HerokuLatencyHigh sees (exists from log_drain.min_requests).",
        ),
        P(
            "5xx share (rule window)",
            [Q(f"heroku_router_window_5xx_ratio{{{HA}}}", "{{app}} ({{window}})")],
            "stat",
            "percentunit",
            w=6,
            h=4,
            thresholds=[(0.05, "red")],
            description="What HerokuRouter5xxHigh sees: the app's 5xx and router H-codes.",
        ),
        P(
            "Service time heatmap",
            [
                Q(
                    f"sum by (le) (increase({SERVICE}_bucket{{{HA}}}[{RATE}]))",
                    "{{le}}",
                    heatmap=True,
                )
            ],
            "heatmap",
            "s",
            w=12,
            h=9,
            description="Requests per service-time bucket; 0.5 s is a bucket bound.",
        ),
        P(
            "Service time p50 / p95 / p99",
            [
                Q(service_quantile(0.5), "{{app}} p50"),
                Q(service_quantile(0.95), "{{app}} p95"),
                Q(service_quantile(0.99), "{{app}} p99"),
            ],
            unit="s",
            w=12,
            h=9,
            thresholds=[(0.5, "red")],
        ),
        P(
            "Requests per second by status class",
            [
                Q(
                    f"sum by (status_class) (rate(heroku_router_requests_total{{{HA}}}[{RATE}]))",
                    "{{status_class}}",
                )
            ],
            unit="reqps",
            stack=True,
        ),
        P(
            "p95 service time by route",
            [Q(service_quantile(0.95, "route"), "{{route}}")],
            unit="s",
            thresholds=[(0.5, "red")],
            description="Routes are the log_drain.routes patterns; the rest is 'other'.",
        ),
        P(
            "Router error codes",
            [
                Q(
                    f"sum by (code) (increase(heroku_router_errors_total{{{HA}}}[{RATE}]))",
                    "{{code}}",
                )
            ],
            stack=True,
            description="H10 app crashed, H12 request timeout, H13 connection closed, "
            "H18 request interrupted, H20 boot timeout, H27 client interrupted, ...",
        ),
        P(
            "Connect time p95",
            [
                Q(
                    "histogram_quantile(0.95, sum by (le, app) "
                    f"(rate(heroku_router_connect_seconds_bucket{{{HA}}}[{RATE}])))",
                    "{{app}}",
                )
            ],
            unit="s",
        ),
        P(
            "Response bytes per second",
            [
                Q(
                    f"sum by (app) (rate(heroku_router_response_bytes_total{{{HA}}}[{RATE}]))",
                    "{{app}}",
                )
            ],
            unit="Bps",
        ),
        P(
            "Requests per second by route",
            [
                Q(
                    f"sum by (route) (rate(heroku_router_requests_total{{{HA}}}[{RATE}]))",
                    "{{route}}",
                )
            ],
            unit="reqps",
        ),
        row("Dynos (runtime metrics)"),
        P(
            "Memory against quota",
            [
                Q(f'heroku_dyno_memory_bytes{{{HA}, kind="total"}}', "{{process}} total"),
                Q(f"heroku_dyno_memory_quota_bytes{{{HA}}}", "{{process}} quota"),
            ],
            unit="bytes",
            w=12,
            description="R14 above the quota (swapping), R15 far above it (killed).",
        ),
        P(
            "Memory used of the quota",
            [
                Q(
                    f'heroku_dyno_memory_bytes{{{HA}, kind="total"}}\n'
                    f"/ ignoring (kind) heroku_dyno_memory_quota_bytes{{{HA}}}",
                    "{{process}}",
                )
            ],
            unit="percentunit",
            w=12,
            thresholds=[(0.9, "orange"), (1, "red")],
        ),
        P(
            "Memory by kind",
            [Q(f"heroku_dyno_memory_bytes{{{HA}}}", "{{process}} {{kind}}")],
            unit="bytes",
        ),
        P(
            "Load average (1m)",
            [Q(f'heroku_dyno_load_average{{{HA}, window="1m"}}', "{{process}}")],
        ),
        P(
            "Dyno error codes",
            [
                Q(
                    f"sum by (process, code) (increase(heroku_dyno_errors_total{{{HA}}}[{RATE}]))",
                    "{{process}} {{code}}",
                )
            ],
            description="R10 boot timeout, R12 exit timeout, R14 memory quota exceeded, "
            "R15 memory quota vastly exceeded.",
        ),
        P(
            "Crashes and restarts",
            [
                Q(
                    f"sum by (process) (increase(heroku_dyno_state_changes_total{{{HA}, "
                    f'to="crashed"}}[{RATE}]))',
                    "{{process}} crashed",
                ),
                Q(
                    f"sum by (process, reason) "
                    f"(increase(heroku_dyno_restarts_total{{{HA}}}[{RATE}]))",
                    "{{process}} {{reason}}",
                ),
            ],
        ),
        P(
            "Boot and restart time (last)",
            [
                Q(f"heroku_dyno_boot_seconds{{{HA}}}", "{{process}} boot"),
                Q(f"heroku_dyno_restart_seconds{{{HA}}}", "{{process}} restart"),
            ],
            unit="s",
        ),
        P(
            "Crashes in the rule window",
            [Q(f"heroku_dyno_window_crashes{{{HA}}}", "{{process}} ({{window}})")],
            "stat",
            thresholds=[(2, "red")],
            description="What HerokuDynoCrashing sees.",
        ),
        row("Heroku Postgres"),
        P(
            "Connections",
            [
                Q(f"heroku_postgres_active_connections{{{HA}}}", "{{source}} active"),
                Q(f"heroku_postgres_waiting_connections{{{HA}}}", "{{source}} waiting"),
                Q(f"heroku_postgres_max_connections{{{HA}}}", "{{source}} max"),
            ],
        ),
        P(
            "Used of the plan's limits",
            [
                Q(f"heroku_postgres_connections_used_ratio{{{HA}}}", "{{source}} connections"),
                Q(f"heroku_postgres_memory_used_ratio{{{HA}}}", "{{source}} memory"),
                Q(f"heroku_postgres_iops_used_ratio{{{HA}}}", "{{source}} IOPS"),
                Q(f"heroku_postgres_wal_used_ratio{{{HA}}}", "{{source}} WAL"),
            ],
            unit="percentunit",
            maximum=1,
            thresholds=[(0.8, "orange"), (0.95, "red")],
        ),
        P(
            "Cache hit ratio",
            [Q(f"heroku_postgres_cache_hit_ratio{{{HA}}}", "{{source}} {{scope}}")],
            unit="percentunit",
            maximum=1,
            thresholds=[(0.99, "green")],
        ),
        P(
            "Database size",
            [Q(f"heroku_postgres_db_size_bytes{{{HA}}}", "{{source}}")],
            unit="bytes",
        ),
        P(
            "Load average (1m)",
            [Q(f'heroku_postgres_load_average{{{HA}, window="1m"}}', "{{source}}")],
        ),
        P(
            "IOPS",
            [
                Q(f"heroku_postgres_read_iops{{{HA}}}", "{{source}} read"),
                Q(f"heroku_postgres_write_iops{{{HA}}}", "{{source}} write"),
            ],
            unit="iops",
        ),
        P(
            "Follower lag",
            [Q(f"heroku_postgres_follower_lag_commits{{{HA}}}", "{{source}}")],
            description="Commits the follower is behind its leader.",
        ),
        P(
            "PgBouncer clients by state",
            [Q(f"heroku_pgbouncer_clients{{{HA}}}", "{{source}} {{state}}")],
        ),
        P(
            "Temporary disk used",
            [Q(f"heroku_postgres_tmp_disk_used_bytes{{{HA}}}", "{{source}}")],
            unit="bytes",
        ),
        row("Heroku Data for Redis"),
        P(
            "Used of the plan's limits",
            [
                Q(f"heroku_redis_connections_used_ratio{{{HA}}}", "{{source}} connections"),
                Q(f"heroku_redis_memory_used_ratio{{{HA}}}", "{{source}} memory"),
            ],
            unit="percentunit",
            maximum=1,
            thresholds=[(0.8, "orange"), (0.95, "red")],
        ),
        P(
            "Hit ratio",
            [Q(f"heroku_redis_hit_ratio{{{HA}}}", "{{source}}")],
            unit="percentunit",
            maximum=1,
        ),
        P(
            "Connections and evicted keys",
            [
                Q(f"heroku_redis_active_connections{{{HA}}}", "{{source}} connections"),
                Q(f"heroku_redis_evicted_keys{{{HA}}}", "{{source}} evicted keys"),
            ],
        ),
        P(
            "Load average (1m)",
            [Q(f'heroku_redis_load_average{{{HA}, window="1m"}}', "{{source}}")],
        ),
        row("Releases"),
        P(
            "Current release",
            [Q(f"heroku_release_version{{{HA}}}", "{{app}}")],
            "stat",
            "none",
            w=6,
            h=4,
            description="Releases are also annotations on every graph of this dashboard.",
        ),
        P(
            "Released",
            [Q(f"heroku_release_timestamp_seconds{{{HA}}} * 1000", "{{app}}")],
            "stat",
            "dateTimeFromNow",
            w=6,
            h=4,
        ),
        P(
            "Platform events",
            [
                Q(
                    f"sum by (kind) (increase(heroku_platform_events_total{{{HA}}}[{RATE}]))",
                    "{{kind}}",
                )
            ],
            w=12,
            h=4,
            description="release, deploy, config, rollback, scale, build_*",
        ),
        row("The drain"),
        P(
            "Since the last batch",
            [Q(f"heroku_drain_seconds_since_last_batch{{{HA}}}", "{{app}}")],
            "stat",
            "s",
            w=6,
            h=4,
            thresholds=[(900, "red")],
            description="HerokuDrainSilent fires above 15 minutes.",
        ),
        P(
            "Lines Logplex dropped (L10)",
            [
                Q(
                    f"sum by (app) (increase(heroku_logplex_dropped_messages_total{{{HA}}}"
                    f"[{RATE}]))",
                    "{{app}}",
                )
            ],
            w=6,
            h=4,
            thresholds=[(1, "red")],
            description="The only loss signal: the drain was too slow or Logplex overloaded.",
        ),
        P(
            "Series over max_series (dropped)",
            [Q(f"heroku_drain_series_dropped{{{J}}}", "{{instance}}")],
            "stat",
            w=6,
            h=4,
            thresholds=[(1, "orange")],
        ),
        P(
            "Requests per second by outcome",
            [
                Q(
                    f"sum by (outcome) (rate(heroku_drain_requests_total{{{J}}}[{RATE}]))",
                    "{{outcome}}",
                )
            ],
            "stat",
            "reqps",
            w=6,
            h=4,
        ),
        P(
            "Frames per second by outcome",
            [
                Q(
                    f"sum by (outcome) (rate(heroku_drain_frames_total{{{HA}}}[{RATE}]))",
                    "{{outcome}}",
                )
            ],
            unit="ops",
            w=12,
            description="ok, lenient, resynced, truncated, malformed, duplicate (a retry).",
        ),
        P(
            "Lines per second by kind and outcome",
            [
                Q(
                    f"sum by (kind, outcome) (rate(heroku_drain_lines_total{{{HA}}}[{RATE}]))",
                    "{{kind}} {{outcome}}",
                )
            ],
            unit="ops",
            w=12,
        ),
    ]
    variables = [
        job_variable("heroku_drain_frames_total"),
        variable_query("app", 'label_values(heroku_drain_frames_total{job=~"$job"}, app)', "App"),
    ]
    return dashboard("app-monitor-heroku", "app-monitor / Heroku app (log drain)", variables,
                     items)  # fmt: skip


DASHBOARDS = {
    "postgres-overview.json": postgres,
    "caches.json": caches,
    "web-vitals.json": web_vitals,
    "daemon.json": daemon,
    "custom-queries.json": custom_queries,
    "heroku.json": heroku,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, build in DASHBOARDS.items():
        (OUT / name).write_text(render(build))
        print(f"wrote {OUT / name}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""For the deployment tests: a real Prometheus (Debian package ``prometheus``), the daemon as
a process, and the PromQL in the dashboards and rule files.

:class:`PrometheusServer` runs ``prometheus`` on a free loopback port with a temporary
TSDB and a generated configuration, optionally with ``--web.enable-remote-write-receiver``.
It is ready when ``/-/ready`` answers 200, and it can be stopped and started again on
the same port and storage (an outage). :class:`DaemonProcess` runs ``python -m monitor run``
as Heroku would, with a configuration from the environment or a file, and stops it
with SIGTERM.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import yaml
from support import free_port, parse_exposition, require_binary, wait_for_sync

from monitor.app.demo.testservers import ServerProcess


@dataclass
class PrometheusServer(ServerProcess):
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def start(self) -> None:
        super().start()

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for_sync(ready, timeout=30)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result of an instant query (``/api/v1/query``); raises on a PromQL error."""
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body.get('error', response.text)}")
        return body["data"]["result"]  # type: ignore[no-any-return]

    def label_sets(self, expr: str, drop: tuple[str, ...] = ()) -> set[frozenset[Any]]:
        """The label sets of an instant query's result, without the ``drop`` labels."""
        return {
            frozenset((k, v) for k, v in item["metric"].items() if k not in drop)
            for item in self.query(expr)
        }

    async def aquery(self, expr: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.url}/api/v1/query", params={"query": expr})
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body.get('error', response.text)}")
        return body["data"]["result"]  # type: ignore[no-any-return]


@contextlib.contextmanager
def prometheus(
    scrape_configs: list[dict[str, Any]] | None = None,
    *,
    receiver: bool = False,
    scrape_interval: str = "1s",
    port: int | None = None,
) -> Iterator[PrometheusServer]:
    binary = require_binary("prometheus", "/usr/bin/prometheus")
    workdir = Path(tempfile.mkdtemp(prefix="app-monitor-prometheus-", dir="/tmp"))
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": scrape_configs or [],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = port or free_port()
    argv = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1d",
    ]
    if receiver:
        argv.append("--web.enable-remote-write-receiver")
    server = PrometheusServer("prometheus", argv, port, workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class DaemonProcess:
    """``monitor run`` in a subprocess on its own HTTP port."""

    proc: subprocess.Popen[str]
    port: int
    token: str | None
    log: Path

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.get(f"http://127.0.0.1:{self.port}/metrics", headers=headers, timeout=5)
        response.raise_for_status()
        return parse_exposition(response.text)

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, frozenset(labels.items())))

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"monitor exited with {self.proc.returncode}:\n{self.output()}")
        return True

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError("monitor did not stop within 20 s of SIGTERM") from None


@contextlib.contextmanager
def monitor_process(
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
    token: str | None = None,
    name: str = "monitor",
) -> Iterator[DaemonProcess]:
    """Run the daemon; ``env`` alone configures it as on Heroku, or ``config`` as a file."""
    port = free_port()
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "HEROKU_", "REMOTE_WRITE_", "MONITOR_", "DYNO"))
    }
    full_env.update({"LOG_FORMAT": "json", "MONITOR_LISTEN": f"127.0.0.1:{port}"})
    if config is not None:
        path = tmp_path / f"{name}.yaml"
        config = {**config, "http": {"listen": f"127.0.0.1:{port}", **config.get("http", {})}}
        path.write_text(yaml.safe_dump(config))
        full_env["MONITOR_CONFIG"] = str(path)
    full_env.update(env or {})
    log = tmp_path / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run"],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    daemon = DaemonProcess(proc, port, token, log)
    try:

        def healthy() -> bool:
            daemon.alive()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for_sync(healthy, timeout=30)
        yield daemon
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# -- PromQL in the dashboards and rule files ---------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules"

FUNCTIONS = frozenset(
    [
        "abs",
        "absent",
        "absent_over_time",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atanh",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "cos",
        "cosh",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "deg",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_count",
        "histogram_fraction",
        "histogram_quantile",
        "histogram_sum",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "ln",
        "log10",
        "log2",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "pi",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rad",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sin",
        "sinh",
        "sort",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "tan",
        "tanh",
        "time",
        "timestamp",
        "vector",
        "year",
    ]
)
AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ]
)
KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
    ]
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([^"]+)"')
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def load_script(path: Path) -> ModuleType:
    """Import a script that is not in a package (the deploy/ generators) as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions and keywords left out)."""
    names = set(_NAME_MATCHER.findall(expr))
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _LABEL_LISTS.sub(" ", text)
    for m in _IDENT.finditer(text):
        word, call = m[1], m[2]
        if word.lower() in ("inf", "nan") or word in KEYWORDS:
            continue
        if call:
            if word not in FUNCTIONS and word not in AGGREGATIONS:
                raise AssertionError(f"unknown PromQL function {word!r} in {expr!r}")
            continue
        names.add(word)
    return names


_GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def grafana_to_promql(expr: str) -> str:
    """A panel or variable query with Grafana's variables replaced, as Prometheus sees it."""
    m = re.fullmatch(r"\s*label_values\((?:(.+),\s*)?(\w+)\)\s*", expr, re.S)
    if m:
        expr = m[1] or "up"
    for var, value in _GRAFANA_INTERVALS.items():
        expr = expr.replace(var, value)
    expr = re.sub(r"\$\{?\w+(?::\w+)?\}?", ".+", expr)
    return expr


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target, query variable and annotation query of
    every dashboard."""
    out: list[tuple[str, str]] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for annotation in board["annotations"]["list"]:
            if "expr" in annotation:
                where = f"{path.name} annotation {annotation['name']!r}"
                out.append((where, grafana_to_promql(annotation["expr"])))
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                out.append((f"{path.name} ${var['name']}", grafana_to_promql(query)))
        stack = list(board["panels"])
        while stack:
            panel = stack.pop()
            stack.extend(panel.get("panels", []))
            for target in panel.get("targets", []):
                where = f"{path.name} {panel['title']!r} {target['refId']}"
                out.append((where, grafana_to_promql(target["expr"])))
    return out


def rule_expressions() -> tuple[list[tuple[str, str]], set[str]]:
    """(where, PromQL) for every rule, and the names the rule files record themselves."""
    out: list[tuple[str, str]] = []
    recorded: set[str] = set()
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                if "record" in rule:
                    recorded.add(rule["record"])
                out.append((f"{path.name} {name}", rule["expr"]))
    return out, recorded

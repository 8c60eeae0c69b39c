"""The Heroku files: Procfile, app.json, .python-version, and the release phase as Heroku
runs it (the Procfile's ``release`` command, in a subprocess, with $DYNO set)."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from monitor.app.cli import _parser
from monitor.app.config import load_config
from monitor.app.env_config import config_from_environment
from monitor.kernel.logging import choose_format

ROOT = Path(__file__).resolve().parents[2]


def procfile() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip():
            continue
        m = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line)
        assert m, f"not a Procfile line: {line!r}"
        assert m[1] not in entries, f"process type {m[1]} declared twice"
        entries[m[1]] = m[2]
    return entries


def app_json() -> dict[str, object]:
    return json.loads((ROOT / "app.json").read_text())  # type: ignore[no-any-return]


def run_release(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The release command from the Procfile, as the release dyno would run it."""
    argv = shlex.split(procfile()["release"])
    assert argv[0] == "monitor"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "HEROKU_"))}
    clean.pop("MONITOR_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "monitor", *argv[1:]],
        env={**clean, "DYNO": "release.1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_procfile_has_both_shapes_and_a_release_phase() -> None:
    entries = procfile()
    assert set(entries) == {"web", "worker", "release"}
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for kind, command in entries.items():
        argv = shlex.split(command)
        assert argv[0] in scripts, f"{kind}: {argv[0]} is not a console script"
        args = _parser().parse_args(argv[1:])  # the CLI accepts exactly these arguments
        assert args.command == ("check" if kind == "release" else "run")
    assert next(iter(entries)) == "worker"  # the documented default shape comes first
    assert "--config-only" in entries["release"]


SAMPLE_VALUES = {
    "REMOTE_WRITE_URL": "https://push.example.net/api/prom/push",
    "REMOTE_WRITE_USERNAME": "123456",
    "REMOTE_WRITE_PASSWORD": "glc_push_token",
    "REMOTE_WRITE_BEARER_TOKEN": "bearer_token",
    "REMOTE_WRITE_INTERVAL": "60s",
    "METRICS_AUTH_TOKEN": "generated-secret",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXX",
    "PAGERDUTY_ROUTING_KEY": "R0123456789abcdef0123456789abcdef",
    "PGBOUNCER_URL": "postgresql://stats:pw@pool.example.net:6432/pgbouncer",
    "CRUX_API_KEY": "AIzaFakeKey",
    "MONITOR_ORIGINS": "https://www.example.com",
    "MONITOR_PROBE_URLS": "https://www.example.com/",
    "MONITOR_VITALS_ORIGINS": "https://www.example.com",
    "MONITOR_STATE_URL": "postgresql://u:pw@state.example.net/state",
    "MONITOR_INTERVAL": "30s",
}
NEEDS = {
    "REMOTE_WRITE_USERNAME": {"REMOTE_WRITE_URL": SAMPLE_VALUES["REMOTE_WRITE_URL"]},
    "REMOTE_WRITE_PASSWORD": {"REMOTE_WRITE_URL": SAMPLE_VALUES["REMOTE_WRITE_URL"]},
    "REMOTE_WRITE_BEARER_TOKEN": {"REMOTE_WRITE_URL": SAMPLE_VALUES["REMOTE_WRITE_URL"]},
    "REMOTE_WRITE_INTERVAL": {"REMOTE_WRITE_URL": SAMPLE_VALUES["REMOTE_WRITE_URL"]},
    "MONITOR_ORIGINS": {"CRUX_API_KEY": SAMPLE_VALUES["CRUX_API_KEY"]},
}


def test_app_json_formation_and_addons() -> None:
    app = app_json()
    formation = app["formation"]
    assert isinstance(formation, dict)
    assert set(formation) == set(procfile()) - {"release"}
    assert formation["worker"]["quantity"] == 1 and formation["web"]["quantity"] == 0
    addons = app["addons"]
    assert isinstance(addons, list)
    assert any(str(a.get("plan", a)).startswith("heroku-postgresql") for a in addons)


def test_every_app_json_config_var_is_described_and_used() -> None:
    env = app_json()["env"]
    assert isinstance(env, dict)
    for name, spec in env.items():
        assert spec.get("description"), f"{name} has no description"
        if "value" in spec:
            assert isinstance(spec["value"], str)
        if name == "LOG_FORMAT":
            assert choose_format(io.StringIO(), {"LOG_FORMAT": spec["value"]}) == spec["value"]
            continue
        if name == "SENTRY_DSN":
            assert '"SENTRY_DSN"' in (ROOT / "monitor" / "kernel" / "sentry.py").read_text()
            continue
        assert name in SAMPLE_VALUES, f"{name}: add a sample value to this test"
        base = NEEDS.get(name, {})
        with_var = config_from_environment({**base, name: SAMPLE_VALUES[name]})
        assert with_var != config_from_environment(base), f"{name} changes nothing"
    # optional variables must say so: app.json's default for "required" is true
    assert env["REMOTE_WRITE_URL"]["required"] is False
    # all of them at once (but one push credential) make a valid configuration
    together = {k: v for k, v in SAMPLE_VALUES.items() if k != "REMOTE_WRITE_BEARER_TOKEN"}
    config = load_config(None, environ={**together, "DYNO": "worker.1"})
    assert config.remote_write is not None and config.remote_write.interval == 60.0


def test_python_version_satisfies_the_project() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)", requires)
    assert minimum, requires
    major, minor = (int(x) for x in version.split(".")[:2])
    assert (major, minor) >= (int(minimum[1]), int(minimum[2]))
    assert f"{major}.{minor}" == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_release_phase_passes_with_app_json_values_and_unreachable_database() -> None:
    # the database is down: the release must still go through (only the config is checked)
    env = {k: v["value"] for k, v in app_json()["env"].items() if "value" in v}  # type: ignore[union-attr]
    env["DATABASE_URL"] = "postgres://u:Pw1234567@127.0.0.1:9/app"
    env["METRICS_AUTH_TOKEN"] = "generated-secret-token"
    result = run_release(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["ok", "config", "valid"]
    assert "warn" not in result.stdout  # state defaults to DATABASE_URL on a dyno
    assert "Pw1234567" not in result.stdout + result.stderr


def test_release_phase_fails_on_invalid_config() -> None:
    result = run_release({"MONITOR_INTERVAL": "15", "REMOTE_WRITE_URL": "ftp://x/"})
    assert result.returncode == 2
    assert "interval" in result.stderr and "remote_write.url" in result.stderr


def test_release_phase_warns_about_sqlite_state_from_a_file(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("interval: 15s\n")
    result = run_release({"MONITOR_CONFIG": str(config)})
    assert result.returncode == 0
    assert "SQLite on a Heroku dyno is wiped daily" in result.stdout


@pytest.mark.parametrize(
    ("dyno", "listen"),
    [
        ({"DYNO": "worker.1"}, "127.0.0.1:9187"),
        ({"DYNO": "web.1", "PORT": "31337"}, "0.0.0.0:31337"),
    ],
)
def test_heroku_defaults_per_dyno(dyno: dict[str, str], listen: str) -> None:
    config = load_config(None, environ={"DATABASE_URL": "postgres://u:p@db.example.com/d", **dyno})
    assert config.http.listen == listen
    assert config.state.url.startswith("postgresql://") or config.state.url.startswith(
        "postgres://"
    )

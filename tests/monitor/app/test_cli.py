"""The ``monitor`` command as a user runs it: exit statuses, output, signals, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from support import free_port, wait_for_sync

from monitor.app.demo.testbed import TestBed

SECRET_PW = "Sup3rSecretPw"
SECRET_TOKEN = "metrics-T0ken-xyz"


def monitor(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "HEROKU_"))
    }
    full_env.update({"LOG_FORMAT": "json", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def write_config(tmp_path: Path, doc: dict[str, object]) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def bed_config(bed: TestBed, **extra: object) -> dict[str, object]:
    assert bed.replica is not None
    return {
        "interval": "1s",
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "state": {"url": "sqlite:///:memory:"},
        "targets": {
            "postgres": [
                {"name": "primary", "url": bed.primary.dsn()},
                {"name": "replica", "url": bed.replica.dsn()},
            ]
        },
        **extra,
    }


def test_once_prints_up_and_recovery(pg_bed: TestBed, tmp_path: Path) -> None:
    result = monitor("once", "-c", str(write_config(tmp_path, bed_config(pg_bed))))
    assert result.returncode == 0, result.stderr
    assert 'pg_up{target="primary"} 1.0' in result.stdout
    assert 'pg_up{target="replica"} 1.0' in result.stdout
    assert 'pg_in_recovery{target="replica"} 1.0' in result.stdout
    assert 'pg_in_recovery{target="primary"} 0.0' in result.stdout


def test_once_formats(pg_bed: TestBed, tmp_path: Path) -> None:
    path = str(write_config(tmp_path, bed_config(pg_bed)))
    as_json = monitor("once", "-c", path, "--format", "json")
    assert as_json.returncode == 0
    rows = json.loads(as_json.stdout)
    replica = next(r for r in rows if r["target"] == "replica")
    assert replica["ok"] is True
    values = {s["name"]: s["value"] for s in replica["samples"]}
    assert values["pg_up"] == 1.0 and values["pg_in_recovery"] == 1.0
    table = monitor("once", "-c", path, "--format", "table")
    assert "# postgres/replica: ok" in table.stdout


def test_once_exit_1_when_a_collector_fails(tmp_path: Path) -> None:
    doc = {
        "targets": {
            "postgres": [
                {
                    "name": "gone",
                    "url": f"postgresql://app:{SECRET_PW}@127.0.0.1:{free_port()}/x",
                    "connect_timeout": "1s",
                }
            ]
        }
    }
    result = monitor("once", "-c", str(write_config(tmp_path, doc)))
    assert result.returncode == 1
    assert 'pg_up{target="gone"} 0.0' in result.stdout
    assert SECRET_PW not in result.stdout + result.stderr


def test_check_reports_each_target(pg_bed: TestBed, tmp_path: Path) -> None:
    doc = bed_config(pg_bed)
    ok = monitor("check", "-c", str(write_config(tmp_path, doc)))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.splitlines()
    assert any(
        line.startswith("ok") and "postgres/primary" in line and "primary" in line for line in lines
    )
    assert any(
        line.startswith("ok") and "postgres/replica" in line and "standby" in line for line in lines
    )

    doc["targets"]["postgres"].append(  # type: ignore[index]
        {"name": "gone", "url": f"postgresql://app:{SECRET_PW}@127.0.0.1:{free_port()}/x"}
    )
    bad = monitor("check", "-c", str(write_config(tmp_path, doc)))
    assert bad.returncode == 1
    assert any(
        line.startswith("FAIL") and "postgres/gone" in line for line in bad.stdout.splitlines()
    )
    assert "Connection refused" in bad.stdout
    assert SECRET_PW not in bad.stdout + bad.stderr


def test_invalid_config_exit_2_one_line_per_problem(tmp_path: Path) -> None:
    doc = {
        "interval": "soon",
        "targets": {"postgres": [{"name": "a", "url": f"mysql://u:{SECRET_PW}@h/d"}]},
    }
    path = str(write_config(tmp_path, doc))
    for command in ("run", "once", "check"):
        result = monitor(command, "-c", path)
        assert result.returncode == 2, (command, result.stderr)
        problems = [line.strip() for line in result.stderr.splitlines()[1:]]
        assert len(problems) == 2
        assert problems[0].startswith("interval:")
        assert problems[1].startswith("targets.postgres[0].url:")
        assert SECRET_PW not in result.stderr


def test_missing_env_var_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"targets": {"postgres": [{"name": "a", "url": "${NOPE_URL}"}]}})
    result = monitor("check", "-c", str(path))
    assert result.returncode == 2
    assert "targets.postgres[0].url: environment variable NOPE_URL is not set" in result.stderr


def _wait_healthy(port: int, proc: subprocess.Popen[str]) -> None:
    def healthy() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for_sync(healthy, timeout=20)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_cleanly_on_signal(pg_bed: TestBed, tmp_path: Path, sig: signal.Signals) -> None:
    doc = bed_config(
        pg_bed, http={"listen": f"127.0.0.1:{free_port()}", "auth_token": SECRET_TOKEN}
    )
    port = int(doc["http"]["listen"].rsplit(":", 1)[1])  # type: ignore[index]
    env = {k: v for k, v in os.environ.items()}
    env["LOG_FORMAT"] = "json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(write_config(tmp_path, doc))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _wait_healthy(port, proc)
        r = httpx.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {SECRET_TOKEN}"}
        )
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 401
        started = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert elapsed < 10.0
    assert "monitor stopped" in err
    assert SECRET_TOKEN not in out + err
    assert "Traceback" not in err


def test_run_exits_1_when_port_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = monitor(
            "run", "-c", str(write_config(tmp_path, {"http": {"listen": f"127.0.0.1:{port}"}}))
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_secrets_never_in_logs_or_check_output(tmp_path: Path) -> None:
    doc = {
        "http": {"listen": f"127.0.0.1:{free_port()}", "auth_token": SECRET_TOKEN},
        "targets": {
            "postgres": [
                {
                    "name": "gone",
                    "url": f"postgres://app:{SECRET_PW}@127.0.0.1:{free_port()}/x",
                    "connect_timeout": "1s",
                }
            ]
        },
    }
    path = str(write_config(tmp_path, doc))
    outputs = [monitor("check", "-c", path), monitor("once", "-c", path, "--format", "json")]
    for result in outputs:
        text = result.stdout + result.stderr
        assert SECRET_PW not in text
        assert SECRET_TOKEN not in text

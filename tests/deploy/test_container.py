"""The generic container and systemd paths.

No container engine runs here, so the image is not built. Instead the Dockerfile's build
stage is replayed: exactly the files it COPYs, the ``uv sync`` commands it RUNs (from
uv.lock), and then the installed ``monitor`` runs. The systemd unit goes through
``systemd-analyze verify``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

from support import require_binary

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
UNIT = ROOT / "deploy" / "systemd" / "app-monitor.service"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for word, rest in instructions():
        if word == "FROM":
            out.append([])
        if out:
            out[-1].append((word, rest))
    return out


def test_runtime_stage_runs_monitor_as_a_non_root_user() -> None:
    final = stages()[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    entry = next(rest for word, rest in final if word == "ENTRYPOINT")
    cmd = next(rest for word, rest in final if word == "CMD")
    assert entry == '["monitor"]' and cmd == '["run"]'
    assert ("STOPSIGNAL", "SIGTERM") in final


def test_python_matches_python_version_file() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    args = dict(
        rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest
    )
    assert args["PYTHON_VERSION"] == version
    uv = re.search(r"ghcr.io/astral-sh/uv:([0-9.]+)", DOCKERFILE.read_text())
    assert uv, "pin the uv image"


def test_build_stage_installs_from_the_lock_and_copies_every_package() -> None:
    build = stages()[0]
    runs = [rest for word, rest in build if word == "RUN"]
    assert runs and all("uv sync --locked --no-dev" in r for r in runs)
    copied = {
        src for word, rest in build if word == "COPY" and "--from" not in rest
        for src in shlex.split(rest)[:-1]
    }  # fmt: skip
    assert {"pyproject.toml", "uv.lock"} <= copied
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
        "targets"
    ]["wheel"]["packages"]
    assert set(packages) <= copied, "a package of the wheel is not copied into the image"


def test_build_stage_replayed_installs_a_working_monitor(tmp_path: Path) -> None:
    uv = require_binary("uv")
    src, venv = tmp_path / "src", tmp_path / "venv"
    src.mkdir()
    build = stages()[0]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_LINK_MODE": "copy"}
    for word, rest in build:
        if word == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", rest):
                env[key] = value
        elif word == "COPY" and "--from" not in rest:
            for item in shlex.split(rest)[:-1]:
                path = ROOT / item
                if path.is_dir():
                    shutil.copytree(path, src / item, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(path, src / item)
        elif word == "RUN":
            env["UV_PROJECT_ENVIRONMENT"] = str(venv)  # the image's /opt/app-monitor
            argv = shlex.split(rest)
            assert argv[0] == "uv"
            result = subprocess.run(
                [uv, *argv[1:]], cwd=src, env=env, capture_output=True, text=True, timeout=600
            )
            assert result.returncode == 0, result.stderr
    installed = venv / "bin" / "monitor"
    clean = {k: v for k, v in os.environ.items() if k not in ("MONITOR_CONFIG", "DATABASE_URL")}
    result = subprocess.run(
        [str(installed), "check", "--config-only"],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "config" in result.stdout and "valid" in result.stdout
    site = next((venv / "lib").glob("python*/site-packages"))
    assert not list(site.glob("pytest*")), "the dev group was installed"


def test_systemd_unit_verifies() -> None:
    analyze = require_binary("systemd-analyze")
    text = UNIT.read_text()
    assert "ExecStart=/opt/app-monitor/.venv/bin/monitor run" in text
    # verify checks that the executables exist: point them at this checkout's monitor
    monitor = shutil.which("monitor") or str(ROOT / ".venv" / "bin" / "monitor")
    unit = Path("/tmp") / f"app-monitor-verify-{os.getpid()}.service"
    unit.write_text(text.replace("/opt/app-monitor/.venv/bin/monitor", monitor))
    try:
        result = subprocess.run(
            [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
        )
    finally:
        unit.unlink()
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no unknown keys or bad values

"""Secure by default, tried from outside: secrets in every output, open listeners, the
Heroku web dyno without credentials.

Every command runs as a real subprocess (``python -m monitor``), as an operator or the
Heroku release phase would, and its stdout and stderr are searched for each secret, its
percent-encoded form and each of its halves.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml
from conftest import make_config, run_daemon
from support import free_port, run_monitor, wait_for

# every character that breaks a URL's userinfo when not percent-encoded
PASSWORD = "Zq9/Xv#Rk?Lm@Wp:Tn%Hb"
TOKEN = "Tk7#Qe/Jw?Ry@Uo&Pi=As"
ROUTING_KEY = "R0ut1ngK3y/#?@R0ut1ngK3yXYZ12345"
WEBHOOK_PATH = "T0AAA/B0BBB/Wh00kS3cr3tPathXYZ"
API_KEY = "AIzaS3cr3t/#?@Ap1K3yValue"
SENTRY_KEY = "5e4f3c2b1a0987654321fedcba0123ab"
SECRETS = (PASSWORD, TOKEN, ROUTING_KEY, WEBHOOK_PATH, API_KEY, SENTRY_KEY)


def _leaks(text: str) -> list[str]:
    found = []
    for secret in SECRETS:
        half = len(secret) // 2
        for piece in (secret, quote(secret, safe=""), secret[:half], secret[half:]):
            if piece in text:
                found.append(piece)
    return found


def _file_config(encoded: bool) -> dict[str, object]:
    pw = quote(PASSWORD, safe="") if encoded else PASSWORD
    tok = quote(TOKEN, safe="") if encoded else TOKEN
    hook = f"https://hooks.invalid/services/{WEBHOOK_PATH}"
    return {
        "interval": "1s",
        "http": {"listen": "127.0.0.1:0", "auth_token": TOKEN},
        "state": {"url": "sqlite:///state.db"},
        "targets": {
            "postgres": [
                {"name": "primary", "url": f"postgresql://app:{pw}@127.0.0.1:1/app"},
            ],
            "redis": [{"name": "redis", "url": f"redis://:{tok}@127.0.0.1:1"}],
            "memcached": [
                {
                    "name": "mc",
                    "servers": "127.0.0.1:1",
                    "username": "u",
                    "password": PASSWORD,
                }
            ],
            "crux": {"api_key": API_KEY, "origins": ["https://shop.invalid"]},
        },
        "receivers": {
            "slack": {
                "type": "slack",
                "webhook_url": hook if encoded else f"hooks.invalid/services/{WEBHOOK_PATH}",
            },
            "pd": {"type": "pagerduty", "routing_key": ROUTING_KEY},
        },
    }


def _environment(encoded: bool) -> dict[str, str]:
    pw = quote(PASSWORD, safe="") if encoded else PASSWORD
    tok = quote(TOKEN, safe="") if encoded else TOKEN
    scheme = "https://" if encoded else ""
    return {
        "DATABASE_URL": f"postgres://app:{pw}@127.0.0.1:1/app",
        "REDIS_URL": f"redis://:{tok}@127.0.0.1:1",
        "MEMCACHIER_SERVERS": "127.0.0.1:1",
        "MEMCACHIER_USERNAME": "u",
        "MEMCACHIER_PASSWORD": PASSWORD,
        "CRUX_API_KEY": API_KEY,
        "MONITOR_ORIGINS": "https://shop.invalid",
        "SLACK_WEBHOOK_URL": f"{scheme}hooks.invalid/services/{WEBHOOK_PATH}",
        "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "SENTRY_DSN": f"https://{SENTRY_KEY}@o0.ingest.invalid/1",
        "METRICS_AUTH_TOKEN": TOKEN,
        "MONITOR_LISTEN": "127.0.0.1:0",
        "MONITOR_STATE_URL": "sqlite:///state.db",
        "MONITOR_INTERVAL": "1s",
    }


async def _spawn(
    args: list[str], env: dict[str, str], cwd: Path, merged: bool = False
) -> asyncio.subprocess.Process:
    """``python -m monitor ARGS`` with stdout (and stderr, or both ``merged``) piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merged else asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )


async def _run_until_a_failure_is_logged(
    args: list[str], env: dict[str, str], cwd: Path
) -> tuple[int, str]:
    """``monitor run`` until it logs its first failed collection, then SIGTERM."""
    proc = await _spawn(args, env, cwd, merged=True)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while True:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    break
                lines.append(line)
                if "collector failed" in line and "postgres" in line:
                    proc.send_signal(signal.SIGTERM)
        status = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return status, "".join(lines)


@pytest.mark.parametrize("source", ["file", "environment"])
@pytest.mark.parametrize("encoded", [False, True], ids=["unencoded", "encoded"])
async def test_no_command_prints_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, encoded: bool
) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "DYNO"))}
    env = {**base, "LOG_FORMAT": "json", "PYTHONPATH": os.pathsep.join(sys.path)}
    args: list[str] = []
    if source == "file":
        path = tmp_path / "monitor.yaml"
        path.write_text(yaml.safe_dump(_file_config(encoded)))
        args = ["-c", str(path)]
    else:
        env |= _environment(encoded)
    monkeypatch.chdir(tmp_path)
    outputs: dict[str, str] = {}
    for command in (["check", "--config-only"], ["check"], ["once"]):
        proc = await _spawn([*command, *args], env, tmp_path)
        out, err = await asyncio.wait_for(proc.communicate(), 90)
        outputs[" ".join(command)] = out.decode() + err.decode()
        if encoded:
            assert proc.returncode in (0, 1), outputs
        else:
            # the URL does not parse: a clear error that says to percent-encode
            assert proc.returncode == 2, outputs
            assert "percent-encode" in outputs[" ".join(command)]
    if encoded:
        status, text = await _run_until_a_failure_is_logged(["run", *args], env, tmp_path)
        outputs["run"] = text
        assert status == 0, text
        assert "collector failed" in text
    else:
        status, text = await _run_until_a_failure_is_logged(["run", *args], env, tmp_path)
        outputs["run"] = text
        assert status == 2, text
    leaks = {command: _leaks(text) for command, text in outputs.items()}
    assert leaks == {key: [] for key in outputs}, outputs


async def test_an_open_listener_is_announced_everywhere(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({"http": {"listen": f"0.0.0.0:{port}"}}))
    status, out, _ = await run_monitor("check", "--config-only", "-c", str(path))
    assert status == 0
    assert "warn  http" in out and "no credentials" in out and "METRICS_AUTH_TOKEN" in out

    proc = await _spawn(["run", "-c", str(path)], {**os.environ, "LOG_FORMAT": "json"}, tmp_path)
    try:
        async with httpx.AsyncClient(timeout=2) as client:

            async def health() -> dict[str, object] | None:
                try:
                    return (await client.get(f"http://127.0.0.1:{port}/healthz")).json()  # type: ignore[no-any-return]
                except httpx.HTTPError:
                    return None

            body = await wait_for(health, timeout=20)
            (warning,) = body["warnings"]  # type: ignore[misc]
            assert "no credentials" in warning
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert "HTTP endpoints are open" in err.decode()


async def test_a_heroku_web_dyno_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")},
        "LOG_FORMAT": "json",
        "DYNO": "web.1",
        "PORT": str(port),
        "MONITOR_STATE_URL": "sqlite:///state.db",
    }
    for command in (["run"], ["check", "--config-only"]):
        proc = await _spawn(command, env, tmp_path)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2, (command, out, err)
        assert "METRICS_AUTH_TOKEN" in (out + err).decode()
        assert "MONITOR_PUBLIC_READ_ONLY" in (out + err).decode()

    # public on purpose, or with a token: it starts
    for extra in ({"MONITOR_PUBLIC_READ_ONLY": "1"}, {"METRICS_AUTH_TOKEN": "t0k3n-12345"}):
        proc = await _spawn(["run"], {**env, **extra}, tmp_path)
        try:
            async with httpx.AsyncClient(timeout=2) as client:

                async def up() -> bool:
                    try:
                        r = await client.get(f"http://127.0.0.1:{port}/healthz")
                        return r.status_code == 200
                    except httpx.HTTPError:
                        return False

                await wait_for(up, timeout=20)
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0


SILENCE_ALL = {"matchers_re": {"alertname": ".*"}, "duration": "30d", "comment": "x"}
SILENCE_OK = {"matchers": {"alertname": "PgDown"}, "duration": "2h", "comment": "deploy"}


async def test_nothing_changes_state_without_credentials() -> None:
    """The outsider's POST from the issue: with no credentials configured nobody can
    silence anything, and the answer says how to enable it."""
    async with run_daemon(make_config()) as daemon, httpx.AsyncClient(timeout=5) as client:
        url = daemon.url
        for method, path in (("POST", "/silences"), ("DELETE", "/silences/abc")):
            r = await client.request(method, url + path, json=SILENCE_ALL)
            assert r.status_code == 403, (method, path, r.text)
            assert "METRICS_AUTH_TOKEN" in r.text
        assert (await client.get(url + "/healthz/detail")).status_code == 403
        # reading stays possible (loopback here; a public address is warned about)
        assert (await client.get(url + "/metrics")).status_code == 200
        assert (await client.get(url + "/alerts")).status_code == 200
        assert (await client.get(url + "/silences")).json()["silences"] == []


async def test_every_route_refuses_missing_wrong_and_cross_site_credentials() -> None:
    token = "s3cret-t0ken-value"
    config = make_config(
        http={
            "listen": "127.0.0.1:0",
            "auth_token": token,
            "username": "ops",
            "password": "pw-ops1",
        }
    )
    good = {"Authorization": f"Bearer {token}"}
    basic = {"Authorization": "Basic " + base64.b64encode(b"ops:pw-ops1").decode()}
    async with run_daemon(config) as daemon, httpx.AsyncClient(timeout=5) as client:
        url = daemon.url
        routes = [
            ("GET", "/metrics"),
            ("GET", "/alerts"),
            ("GET", "/silences"),
            ("POST", "/silences"),
            ("DELETE", "/silences/abc"),
            ("GET", "/healthz/detail"),
        ]
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic !!"}):
                r = await client.request(method, url + path, headers=headers, json=SILENCE_OK)
                assert r.status_code == 401, (method, path, headers, r.status_code)
        # a cross-site form post carries the browser's cached basic credentials, but it
        # can only be a "simple" request: text/plain, form-urlencoded or multipart
        for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            r = await client.post(
                url + "/silences",
                content=json.dumps(SILENCE_OK),
                headers={**basic, "content-type": media, "origin": "https://evil.example"},
            )
            assert r.status_code == 415, (media, r.text)
        json_type = {**good, "content-type": "application/json"}
        r = await client.post(url + "/silences", content=b"x" * 70_000, headers=json_type)
        assert r.status_code == 413
        r = await client.post(url + "/silences", content=b'{"matchers": ', headers=json_type)
        assert r.status_code == 400
        r = await client.post(url + "/silences", json=SILENCE_ALL, headers=good)
        assert r.status_code == 400 and "at most 7d" in r.json()["error"]
        assert (await client.get(url + "/silences", headers=good)).json()["silences"] == []
        # the legitimate request works, and says who made it
        r = await client.post(url + "/silences", json=SILENCE_OK, headers=basic)
        assert r.status_code == 201, r.text
        assert r.json()["created_by"] == "basic:ops@127.0.0.1"
        assert token not in r.text

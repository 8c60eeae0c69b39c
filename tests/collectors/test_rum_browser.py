"""The beacon path in a real browser: headless Chromium, the real ``web-vitals`` package
from npm, a page on one origin beaconing to the daemon on another.

``navigator.sendBeacon`` always sends credentials; a JSON Blob is not a CORS-safelisted
body, so Chromium sends a preflight first and drops the beacon, without a word, unless
the answer allows the origin *and* credentials. Only a browser shows that.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import make_config, run_daemon
from support import REQUIRE_ALL, metric, parse_exposition, require_binary, wait_for

WEB_VITALS_VERSION = "4"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "app-monitor-tests"

PAGE = """<!doctype html>
<html><head><title>shop</title></head><body><h1>Product</h1>
<script src="/web-vitals.iife.js"></script>
<script>
  const endpoint = "%(endpoint)s";
  webVitals.onTTFB((metric) => {
    const body = JSON.stringify({...metric, path: location.pathname});
    const ok = navigator.sendBeacon(endpoint, new Blob([body], {type: "%(media)s"}));
    document.title = ok ? "queued" : "refused";
  });
</script></body></html>
"""


def _web_vitals_script() -> Path:
    """``web-vitals.iife.js`` from npm, installed once into a cache outside the repo."""
    target = CACHE / f"web-vitals-{WEB_VITALS_VERSION}"
    script = target / "node_modules" / "web-vitals" / "dist" / "web-vitals.iife.js"
    if not script.is_file():
        npm = require_binary("npm")
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(target),
                f"web-vitals@{WEB_VITALS_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0 or not script.is_file():
            message = f"npm install web-vitals failed: {done.stderr.strip()[-300:]}"
            if REQUIRE_ALL:
                pytest.fail(message)
            pytest.skip(message)
    return script


@contextlib.contextmanager
def page_server(root: Path) -> Iterator[str]:
    """A static server for the page and the script; yields its origin."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _chromium() -> str:
    return require_binary("chromium", "chromium-browser", "google-chrome")


async def _open_in_chromium(url: str, profile: Path) -> None:
    """Load ``url`` headless and let it run for a few seconds of virtual time."""
    args = [
        _chromium(),
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=3000",
        "--dump-dom",
        url,
    ]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "<title>queued</title>" in out.decode(), out.decode()[-500:]


@pytest.mark.parametrize("media", ["application/json", "text/plain"])
async def test_a_real_browser_beacon_reaches_the_daemon(tmp_path: Path, media: str) -> None:
    script = _web_vitals_script()
    _chromium()
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(script, root / "web-vitals.iife.js")
    with page_server(root) as page_origin:
        config = make_config(
            targets={"rum": {"allowed_origins": [page_origin], "routes": ["/products/:id"]}},
        )
        async with run_daemon(config) as daemon, httpx.AsyncClient(timeout=10) as client:
            endpoint = daemon.url + "/vitals"
            (root / "products").mkdir()
            (root / "products" / "42.html").write_text(
                PAGE % {"endpoint": endpoint, "media": media}
            )
            await _open_in_chromium(f"{page_origin}/products/42.html", tmp_path / "profile")

            async def ttfb_reports() -> float | None:
                text = (await client.get(daemon.url + "/metrics")).text
                m = parse_exposition(text)
                return metric(m, "webvitals_reports_total", target="rum", metric="ttfb") or None

            assert await wait_for(ttfb_reports, timeout=15) == 1
            m = parse_exposition((await client.get(daemon.url + "/metrics")).text)
            count = "webvitals_ttfb_seconds_count"
            assert metric(m, count, target="rum", route="/products/:id") == 1

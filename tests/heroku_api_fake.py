"""A local stand-in for the Heroku Platform API's releases (what a rollback uses).

* ``GET /apps/{app}/releases`` honours ``Range: version ..; order=desc, max=N``;
* ``GET /apps/{app}/releases/{id_or_version}``;
* ``POST /apps/{app}/releases`` ``{"release": "<id>"}``: a rollback, answered 201 with
  the new release (``description: "Rollback to vN"``).

Every request must carry ``Accept: application/vnd.heroku+json; version=3`` (else 400
``{"id": "bad_request"}``, as the API answers without a version) and
``Authorization: Bearer <key>`` (else 401 ``{"id": "unauthorized"}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

ACCEPT = "application/vnd.heroku+json; version=3"
API_KEY = "hrku-0123456789abcdef0123456789abcdef"


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeHerokuApi:
    def __init__(self, app: str, versions: range) -> None:
        self.app = app
        self.releases: list[dict[str, Any]] = [
            {
                "id": str(uuid.uuid4()),
                "version": v,
                "description": f"Deploy {v}",
                "status": "succeeded",
            }
            for v in versions
        ]
        self.calls: list[Call] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def posts(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST"]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.calls.append(Call(method, path, headers, body))
                status, answer = self._answer(method, path, headers, body)
                data = json.dumps(answer).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        if headers.get("accept") != ACCEPT:
            return 400, {"id": "bad_request", "message": "Please specify a version."}
        if headers.get("authorization") != f"Bearer {API_KEY}":
            return 401, {"id": "unauthorized", "message": "Invalid credentials provided."}
        m = re.fullmatch(r"/apps/([^/]+)/releases(?:/([^/]+))?", path)
        if m is None or m[1] != self.app:
            return 404, {"id": "not_found", "message": "Couldn't find that app."}
        if method == "GET" and m[2] is None:
            ordered = sorted(self.releases, key=lambda r: r["version"])
            limit = 200
            spec = headers.get("range", "")
            if "order=desc" in spec:
                ordered.reverse()
            found = re.search(r"max=(\d+)", spec)
            if found:
                limit = int(found[1])
            return 206 if len(ordered) > limit else 200, ordered[:limit]
        if method == "GET":
            for release in self.releases:
                if m[2] in (release["id"], str(release["version"])):
                    return 200, release
            return 404, {"id": "not_found", "message": "Couldn't find that release."}
        if method == "POST" and m[2] is None:
            try:
                wanted = json.loads(body)["release"]
            except (ValueError, KeyError, TypeError):
                return 422, {"id": "invalid_params", "message": "release is required"}
            target = next((r for r in self.releases if r["id"] == wanted), None)
            if target is None:
                return 404, {"id": "not_found", "message": "Couldn't find that release."}
            new = {
                "id": str(uuid.uuid4()),
                "version": max(r["version"] for r in self.releases) + 1,
                "description": f"Rollback to v{target['version']}",
                "status": "succeeded",
            }
            self.releases.append(new)
            return 201, new
        return 405, {"id": "method_not_allowed", "message": "nope"}

"""Local stand-ins for PagerDuty and Slack, and a harness around the alerting engine.

:class:`FakeReceiverServer` is a small HTTP/1.1 server on 127.0.0.1 (asyncio streams,
keep-alive) that speaks the PagerDuty Events v2 or Slack incoming-webhook format: it
validates what it receives the way the real service documents (PagerDuty: routing key,
event_action, dedup_key <= 255, summary <= 1024, severity, source; Slack: text, at most
50 blocks, section text <= 3000) and answers 202 ``{"status":"success",...}`` or
``200 ok``. A test can script the next answers: any status/body/headers (error codes,
``Retry-After``), a delay, holding the request until released, or dropping the
connection without an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from support import wait_for

from alerts.instance import Clock, JobKey
from alerts.notify.coordinator import AlertEngine
from alerts.notify.delivery import Delivery
from alerts.receivers.registry import build_receivers, http_client
from alerts.routing import Router
from alerts.rules.ruleset import build_rules
from alerts.series import RECEIVER_UP, SELF_TARGET, SeriesView, view_of
from alerts.silences import Silences
from alerts.statedb import open_state_db
from monitor.app.config import Config
from monitor.kernel.snapshot import Sample

ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32"
"""32 characters, like a real PagerDuty integration key."""
SLACK_PATH = "/services/T0000SECRET/B0000SECRET/XXXXXXXXSECRETXXXXXXXX"


@dataclass
class Answer:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hold: bool = False
    """Keep the request open until :meth:`FakeReceiverServer.release`."""
    drop: bool = False
    """Close the connection without answering."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """time.monotonic() at arrival."""
    status: int = 0
    """The status answered (0: none, the connection was held or dropped)."""

    def json(self) -> Any:
        return json.loads(self.body)


class FakeReceiverServer:
    def __init__(self, kind: str) -> None:
        assert kind in ("pagerduty", "slack", "webhook", "site")
        self.kind = kind
        self.requests: list[Received] = []
        self.answers: list[Answer] = []
        self._released = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0
        self.holding = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self.site_status = 200
        """What a ``site`` server answers to GET (the page an HTTP probe watches)."""
        self.site_cycle: Iterator[int] | None = None
        """When set, GETs are answered with its statuses in turn instead."""
        self.poison: bytes | None = None
        """Slack: a message whose body contains this is refused (400 invalid_payload)."""

    # ---- scripting
    def then(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def release(self) -> None:
        self._released.set()

    @property
    def url(self) -> str:
        if self.kind == "pagerduty":
            return f"http://127.0.0.1:{self.port}/v2/enqueue"
        if self.kind == "slack":
            return f"http://127.0.0.1:{self.port}{SLACK_PATH}"
        if self.kind == "site":
            return f"http://127.0.0.1:{self.port}/"
        return f"http://127.0.0.1:{self.port}/hook/SECRETSECRETSECRET"

    def bodies(self) -> list[Any]:
        return [r.json() for r in self.requests]

    def actions(self) -> list[str]:
        return [b.get("event_action", "?") for b in self.bodies()]

    # ---- server
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.release()
        for writer in list(self._writers):
            writer.close()
        await asyncio.sleep(0)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
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
                if method != "POST":
                    status = self.site_status if self.kind == "site" else 405
                    if self.kind == "site" and self.site_cycle is not None:
                        status = next(self.site_cycle)
                    await self._write(writer, Answer(status, "site" if status < 400 else "down"))
                    continue
                received = Received(path, headers, body, time.monotonic())
                self.requests.append(received)
                answer = self.answers.pop(0) if self.answers else self._default(body)
                if not (answer.hold or answer.drop):
                    received.status = answer.status
                if answer.delay:
                    await asyncio.sleep(answer.delay)
                if answer.hold:
                    self.holding += 1
                    await self._released.wait()
                    self.holding -= 1
                if answer.drop:
                    writer.close()
                    return
                await self._write(writer, answer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _write(self, writer: asyncio.StreamWriter, answer: Answer) -> None:
        body = answer.body.encode()
        headers = {"Content-Length": str(len(body)), "Connection": "keep-alive", **answer.headers}
        head = f"HTTP/1.1 {answer.status} X\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()

    def _default(self, raw: bytes) -> Answer:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if self.kind == "pagerduty":
            errors = pagerduty_errors(data)
            if errors:
                return Answer(
                    400,
                    json.dumps(
                        {
                            "status": "invalid event",
                            "message": "Event object is invalid",
                            "errors": errors,
                        }
                    ),
                    {"Content-Type": "application/json"},
                )
            return Answer(
                202,
                json.dumps(
                    {
                        "status": "success",
                        "message": "Event processed",
                        "dedup_key": data["dedup_key"],
                    }
                ),
                {"Content-Type": "application/json"},
            )
        if self.kind == "slack":
            if self.poison is not None and self.poison in raw:
                return Answer(400, "invalid_payload")
            problem = slack_problem(data)
            return Answer(400, problem) if problem else Answer(200, "ok")
        return Answer(200, "")


def pagerduty_errors(data: Any) -> list[str]:
    """The checks PagerDuty's Events API v2 documents for an event."""
    if not isinstance(data, dict):
        return ["Event object must be a JSON object"]
    errors = []
    if not isinstance(data.get("routing_key"), str) or len(data["routing_key"]) != 32:
        errors.append("'routing_key' must be 32 characters")
    action = data.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    key = data.get("dedup_key")
    if key is not None and (not isinstance(key, str) or len(key) > 255):
        errors.append("'dedup_key' must be at most 255 characters")
    if action == "trigger":
        payload = data.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary or len(summary) > 1024:
                errors.append("'payload.summary' must be 1..1024 characters")
            if not payload.get("source"):
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in ("critical", "error", "warning", "info"):
                errors.append("'payload.severity' is invalid")
    elif key is None:
        errors.append("'dedup_key' is required to acknowledge or resolve")
    if len(json.dumps(data)) > 512_000:
        errors.append("event larger than 512 KB")
    return errors


def slack_problem(data: Any) -> str | None:
    """``invalid_payload``/``invalid_blocks``/``no_text`` as Slack answers them."""
    if not isinstance(data, dict):
        return "invalid_payload"
    if not data.get("text") and not data.get("blocks"):
        return "no_text"
    blocks = list(data.get("blocks", []))
    for attachment in data.get("attachments", []):
        blocks.extend(attachment.get("blocks", []))
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        text = block.get("text", {}).get("text", "") if isinstance(block.get("text"), dict) else ""
        if block.get("type") == "section" and len(text) > 3000:
            return "invalid_blocks"
        if block.get("type") == "header" and len(text) > 150:
            return "invalid_blocks"
    return None


# ------------------------------------------------------------------------------------
# A harness: engine + delivery with a clock the test moves
# ------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.monotonic = 1000.0
        self.wall = start

    def __call__(self) -> Clock:
        return Clock(self.monotonic, self.wall)

    def advance(self, seconds: float) -> Clock:
        self.monotonic += seconds
        self.wall += seconds
        return self()


class Harness:
    """The engine and delivery of one daemon, stepped by hand with a fake clock."""

    def __init__(self, config: Config, clock: FakeClock) -> None:
        self.config = config
        self.clock = clock
        self.client = http_client()
        self.receivers, self.fallback = build_receivers(config.receivers, self.client)
        self.ruleset = build_rules(config.rules, postgres_targets=len(config.targets.postgres))
        self.silences = Silences(config.silences)
        self.db = open_state_db(config.state)
        self.engine = AlertEngine(
            self.ruleset,
            Router(config.routes, list(config.receivers), self.fallback),
            self.silences,
            self.receivers,
            self.db,
        )
        self.delivery = Delivery(self.engine.outbox, self.receivers, self.silences, clock=clock)

    async def open(self) -> None:
        await self.db.open()
        self.engine.adopt(await self.db.load(), self.clock())

    def view(
        self, samples: Mapping[JobKey, Sequence[Sample]], failed: frozenset[JobKey] = frozenset()
    ) -> SeriesView:
        """A view of these samples plus the receivers' health, as the daemon builds it;
        jobs in ``failed`` are down (not run yet, or failing)."""
        receivers = [
            RECEIVER_UP(1 if up else 0, name, target=SELF_TARGET)
            for name, up in self.engine.receivers_up().items()
        ]
        return view_of({**samples, None: receivers}, failed=failed)

    async def evaluate(self, view: SeriesView) -> None:
        self.engine.evaluate(view, self.clock())
        await self.engine.flush(self.clock())

    async def deliver(self, receiver: str | None = None, rounds: int = 50) -> None:
        """Step the receivers until nothing more is due *now* (the clock does not move)."""
        names = [receiver] if receiver else list(self.receivers)
        for _ in range(rounds):
            waits = [await self.delivery.step(n) for n in names]
            if all(w is None or w > 0 for w in waits):
                return

    async def run_until(
        self, done: Callable[[], bool], *, step: float = 0.5, limit: float = 600.0
    ) -> float:
        """Deliver while moving the clock by ``step``; returns the fake seconds it took."""
        spent = 0.0
        while not done():
            if spent > limit:
                raise AssertionError(f"not done after {limit} fake seconds")
            await self.deliver()
            if done():
                break
            self.clock.advance(step)
            spent += step
        return spent

    async def close(self) -> None:
        await self.db.close()
        await self.client.aclose()


async def wait_requests(server: FakeReceiverServer, count: int, timeout: float = 10) -> None:
    await wait_for(lambda: len(server.requests) >= count, timeout=timeout)


def receivers_doc(
    pagerduty: FakeReceiverServer | None = None,
    slack: FakeReceiverServer | None = None,
    **extra: Mapping[str, Any],
) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if pagerduty is not None:
        doc["oncall"] = {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": pagerduty.url}
    if slack is not None:
        doc["team"] = {"type": "slack", "webhook_url": slack.url}
    doc.update(extra)
    return doc


def all_text(values: Sequence[Any]) -> str:
    return "\n".join(json.dumps(v, ensure_ascii=False) for v in values)

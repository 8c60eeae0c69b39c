"""The push as a daemon component: collect every ``interval``, send oldest first, retry.

Two tasks share a :class:`~monitor.remote_write.queue.SampleQueue`: one reads the
registry every interval (so collections keep their spacing while the receiver is
down), the other sends whatever is queued, backing off exponentially (from
:data:`MIN_BACKOFF` to ``max_backoff``, or as ``Retry-After`` asks, up to 5 minutes) on
retryable errors.
At shutdown a last collection is taken and the queue gets one more attempt, bounded by
:data:`FINAL_PUSH_SECONDS` so the daemon still exits before Heroku's SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence

import httpx
import structlog
from prometheus_client.registry import Collector

from monitor.kernel.component import Component, Context
from monitor.kernel.remote_write.client import Outcome, RemoteWriteClient, Result, endpoint_name
from monitor.kernel.remote_write.config import RemoteWriteConfig
from monitor.kernel.remote_write.encode import encode
from monitor.kernel.remote_write.queue import Chunk, SampleQueue
from monitor.kernel.remote_write.series import SeriesReader
from monitor.kernel.remote_write.stats import PushStats, PushStatsCollector
from monitor.kernel.source import CheckResult

log = structlog.get_logger("monitor.remote_write")

MIN_BACKOFF = 0.5
RETRY_AFTER_CAP = 300.0
FINAL_PUSH_SECONDS = 2.0
METADATA_INTERVAL = 60.0
"""Family metadata (type, help) rides along at most this often, as Prometheus sends it."""
DEFAULT_JOB = "app-monitor"


def default_labels(
    config: RemoteWriteConfig, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``job`` and ``instance`` (the Heroku dyno name, else the host name), then the
    configured labels, which win."""
    env = os.environ if environ is None else environ
    instance = env.get("DYNO") or socket.gethostname()
    return {"job": DEFAULT_JOB, "instance": instance, **config.labels}


class RemoteWriteComponent(Component):
    name = "remote_write"

    def __init__(
        self,
        context: Context,
        config: RemoteWriteConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.interval = config.interval or context.interval
        self._exposition = context.exposition
        self._clock = clock
        self._transport = transport
        self._client: RemoteWriteClient | None = None
        self.endpoint = endpoint_name(config.url.get_secret_value())
        self.reader = SeriesReader(context.exposition.registry, default_labels(config))
        self.queue = SampleQueue(config.max_queue_samples)
        self.stats = PushStats()
        self._collector = PushStatsCollector(
            self.stats,
            lambda: len(self.queue),
            config.max_queue_samples,
            lambda: self.reader.series,
        )
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_metadata = float("-inf")
        self._failing: str | None = None
        self._last_rejection: str | None = None
        self._dropping = False

    @property
    def client(self) -> RemoteWriteClient:
        """Created on first use, so ``monitor once`` never opens one."""
        if self._client is None:
            self._client = RemoteWriteClient(self.config, self._transport)
        return self._client

    def collectors(self) -> Sequence[Collector]:
        return (self._collector,)

    async def start(self) -> None:
        log.info(
            "remote_write pushing",
            endpoint=self.endpoint,
            interval=self.interval,
            max_queue_samples=self.config.max_queue_samples,
        )
        self._tasks = [
            asyncio.create_task(self._collect_loop(), name="remote-write-collect"),
            asyncio.create_task(self._send_loop(), name="remote-write-send"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        try:
            self.collect()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FINAL_PUSH_SECONDS):
                    while (result := await self.push_one()) is not None:
                        if result.outcome is Outcome.RETRY:
                            break
            left = self.queue.drain()
            if left:
                log.warning("remote_write: samples left unsent at shutdown", samples=left)
        finally:
            if self._client is not None:
                await self._client.aclose()
                self._client = None

    async def check(self) -> Sequence[CheckResult]:
        """An empty write: proves the endpoint and the credentials without adding data."""
        item = "remote_write"
        client = RemoteWriteClient(self.config, self._transport)
        try:
            result = await client.send(encode(None))
        finally:
            await client.aclose()
        if result.outcome is Outcome.SENT:
            return [CheckResult(item, True, f"{self.endpoint} accepts writes ({result.detail})")]
        return [CheckResult(item, False, f"{self.endpoint}: {result.detail}")]

    # -- collecting -------------------------------------------------------------------

    def collect(self) -> None:
        """Queue the registry's current samples (dropping the oldest past the bound)."""
        try:
            batch = self.reader.read(self._clock())
        except Exception:
            log.exception("remote_write: reading the registry failed")
            return
        dropped = self.queue.put(batch)
        if dropped:
            self.stats.dropped += dropped
            if not self._dropping:
                log.warning(
                    "remote_write queue full: dropping the oldest samples",
                    max_queue_samples=self.queue.max_samples,
                )
            self._dropping = True
        self._changed()
        self._wake.set()

    async def _collect_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            self.collect()
            next_at += self.interval
            if next_at <= loop.time():  # the loop was blocked: skip, don't burst
                next_at = loop.time() + self.interval

    # -- sending ----------------------------------------------------------------------

    async def _send_loop(self) -> None:
        backoff = MIN_BACKOFF
        while True:
            await self._wake.wait()
            self._wake.clear()
            while (result := await self.push_one()) is not None:
                if result.outcome is Outcome.RETRY:
                    delay = backoff
                    if result.retry_after is not None:  # the receiver's word, within reason
                        delay = min(result.retry_after, RETRY_AFTER_CAP)
                    backoff = min(backoff * 2, self.config.max_backoff)
                    await asyncio.sleep(delay)
                else:
                    backoff = MIN_BACKOFF

    async def push_one(self) -> Result | None:
        """Send the next chunk once; None when nothing is queued."""
        chunk = self.queue.take(self.config.max_samples_per_send)
        if chunk is None:
            return None
        if chunk.body is None:
            now = self._clock()
            with_metadata = now - self._last_metadata >= METADATA_INTERVAL
            chunk.body = encode(chunk, self.reader.metadata.values() if with_metadata else ())
            if with_metadata:
                self._last_metadata = now
        self.queue.sending = True
        try:
            result = await self.client.send(chunk.body)
        finally:
            self.queue.sending = False
        self._record(result, chunk)
        return result

    def _record(self, result: Result, chunk: Chunk) -> None:
        st = self.stats
        st.requests[result.outcome.value] += 1
        if result.outcome is Outcome.RETRY:
            if self._failing is None:
                log.warning(
                    "remote_write failing; queueing and retrying",
                    endpoint=self.endpoint,
                    error=result.detail,
                )
            self._failing = result.detail
        else:
            self.queue.done()
            if result.outcome is Outcome.SENT:
                st.samples["sent"] += chunk.samples
                st.sent_bytes += len(chunk.body or b"")
                st.last_success = self._clock()
                self._dropping = False
                if self._failing is not None:
                    log.info(
                        "remote_write recovered",
                        endpoint=self.endpoint,
                        queued=len(self.queue),
                    )
                self._failing = None
            else:
                st.samples["rejected"] += chunk.samples
                if result.detail != self._last_rejection:
                    log.warning(
                        "remote_write request rejected; its samples are dropped",
                        endpoint=self.endpoint,
                        error=result.detail,
                        samples=chunk.samples,
                    )
                self._last_rejection = result.detail
        self._changed()

    def _changed(self) -> None:
        self._exposition.extra_generation += 1

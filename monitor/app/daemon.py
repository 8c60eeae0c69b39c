"""The long-running daemon: collectors on a schedule, the HTTP server, components,
and a shutdown that finishes within :data:`SHUTDOWN_DEADLINE` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
from collections.abc import Generator, Sequence

import structlog
import uvicorn

from monitor.app.config import Config
from monitor.app.plugins import build_components, build_sources
from monitor.kernel.component import Component, Context
from monitor.kernel.exposition import Exposition
from monitor.kernel.http import (
    DirectRoutes,
    build_app,
    exposure_warning,
    heroku_web_refusal,
)
from monitor.kernel.runner import JobRunner
from monitor.kernel.scheduler import CollectorScheduler
from monitor.kernel.sentry import init_sentry
from monitor.kernel.snapshot_store import SnapshotStore
from monitor.kernel.source import CollectorJob, Source

log = structlog.get_logger("monitor.daemon")

EXIT_REFUSED = 2
"""The configuration cannot be served safely (the same status as an invalid config)."""
SHUTDOWN_DEADLINE = 10.0
"""Heroku sends SIGKILL 30 s after SIGTERM; we aim to be gone well before."""
JOB_DRAIN_DEADLINE = 5.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted sockets inherit this: small responses must not wait for a delayed ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if family == socket.AF_INET6:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class Daemon:
    def __init__(self, config: Config, *, sources: Sequence[Source] | None = None) -> None:
        self.config = config
        self.store = SnapshotStore()
        self.exposition = Exposition(self.store)
        self.sources = list(build_sources(config) if sources is None else sources)
        self.jobs: list[CollectorJob] = [job for s in self.sources for job in s.jobs()]
        self.components: list[Component] = build_components(
            config, Context(self.store, self.exposition, config.http, config.interval)
        )
        for component in self.components:
            for collector in component.collectors():
                self.exposition.register(collector)
            self.jobs.extend(component.jobs())
        self.runner = JobRunner(self.store)
        for job in self.jobs:
            self.store.register(job.collector, job.target, job.interval)
        self.scheduler = CollectorScheduler(self.runner, self.jobs, after_run=self._after_run)
        self._stop = asyncio.Event()
        self.bound_port: int | None = None

    async def _after_run(self) -> None:
        for component in self.components:
            try:
                await component.after_collection()
            except Exception:
                log.exception("component failed after collection", component=component.name)

    def request_stop(self) -> None:
        self._stop.set()

    def _build_app(self) -> object:
        routes = [r for c in self.components for r in c.routes()]
        app = build_app(
            exposition=self.exposition,
            store=self.store,
            http_config=self.config.http,
            is_running=lambda: self.scheduler.running,
            extra_routes=routes,
        )
        return DirectRoutes(app)

    async def run(self) -> int:
        """Run until :meth:`request_stop` or SIGTERM/SIGINT; returns the exit status."""
        init_sentry()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)
        refusal = heroku_web_refusal(self.config.http, os.environ)
        if refusal:
            log.error("not starting", reason=refusal)
            await self._close_sources()
            return EXIT_REFUSED
        warning = exposure_warning(self.config.http)
        if warning:
            log.warning("HTTP endpoints are open", warning=warning)
        host, port = self.config.http.host_port
        try:
            sock = bind_socket(host, port)
        except OSError as exc:
            log.error("cannot start HTTP server", error=str(exc))
            await self._close_sources()
            return 1
        self.bound_port = sock.getsockname()[1]
        server = _Server(
            uvicorn.Config(
                self._build_app(),  # type: ignore[arg-type]
                lifespan="off",
                access_log=False,
                # X-Forwarded-For is read by the endpoints that need a client address,
                # with the number of proxies the operator trusts (rum.trusted_proxy_hops)
                proxy_headers=False,
                # Prometheus scrapes every 15-60 s over one keep-alive connection; with
                # uvicorn's 5 s default every scrape opened a new one
                timeout_keep_alive=75,
                log_config=None,
                timeout_graceful_shutdown=3,
            )
        )
        server_task = asyncio.create_task(server.serve(sockets=[sock]), name="http-server")
        for component in self.components:
            await component.start()
        self.scheduler.start()
        # what start-up made (modules, config, rules, pools) lives as long as the process:
        # out of the collector's reach, a full collection walks only what came since, so
        # its pauses stay a few ms instead of 100 ms under thousands of beacons a second
        gc.freeze()
        log.info(
            "monitor running",
            listen=f"{host}:{self.bound_port}",
            targets=len(self.sources),
            jobs=len(self.jobs),
        )
        stop_task = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({stop_task, server_task}, return_when=asyncio.FIRST_COMPLETED)
        status = 0
        if server_task in done and not self._stop.is_set():
            log.error("HTTP server stopped unexpectedly")
            status = 1
        stop_task.cancel()
        await self._shutdown(server, server_task)
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        log.info("monitor stopped", status=status)
        return status

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("signal received, shutting down", signal=sig.name)
        self.request_stop()

    async def _shutdown(self, server: uvicorn.Server, server_task: asyncio.Task[None]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_DEADLINE - 1.0
        await self.scheduler.stop(JOB_DRAIN_DEADLINE)
        for component in self.components:
            remaining = max(0.5, deadline - loop.time() - 2.0)
            try:
                async with asyncio.timeout(remaining):
                    await component.stop()
            except Exception:
                log.exception("component failed to stop", component=component.name)
        server.should_exit = True
        try:
            async with asyncio.timeout(max(0.5, deadline - loop.time() - 1.0)):
                await server_task
        except (TimeoutError, SystemExit):
            server.force_exit = True
            server_task.cancel()
        await self._close_sources()

    async def _close_sources(self) -> None:
        async def close(source: Source) -> None:
            try:
                async with asyncio.timeout(2.0):
                    await source.close()
            except Exception:
                log.warning("source failed to close", source=source.name, kind=source.kind)

        await asyncio.gather(*(close(s) for s in self.sources))

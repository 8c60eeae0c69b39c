"""The deploys component: ``POST /deploys``, the comparison job, the dyno's own release.

Enabled by a ``deploys:`` section. Built in :mod:`monitor.app.plugins` with the drain's
state (router latency, 5xx, H12 and dyno memory come from the log drain) and the
PagerDuty/Slack targets of the receivers named in ``deploys.notify``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence

import structlog
from starlette.routing import BaseRoute, Route

from collectors.deploys.announce import Announcer, ChangeTarget
from collectors.deploys.config import DeploysConfig
from collectors.deploys.endpoint import DeployEndpoint
from collectors.deploys.job import DeployJob
from collectors.deploys.markers import from_dyno_metadata
from collectors.deploys.store import DeployStore, open_deploy_store
from collectors.heroku_logs.aggregate import DrainState
from collectors.heroku_logs.release_log import ReleaseLogError
from monitor.kernel.component import Component, Context
from monitor.kernel.http import Authenticator
from monitor.kernel.source import CheckResult, CollectorJob

log = structlog.get_logger("collectors.deploys")


class DeploysComponent(Component):
    name = "deploys"

    def __init__(
        self,
        config: DeploysConfig,
        context: Context,
        store: DeployStore,
        drain: DrainState | None,
        targets: tuple[ChangeTarget, ...] = (),
        *,
        default_app: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.announcer = Announcer(targets)
        self.job = DeployJob(config, store, context.store, drain, self.announcer, context.interval)
        self.endpoint = DeployEndpoint(Authenticator(context.http), store, default_app)
        self._environ = os.environ if environ is None else environ
        self._default_app = default_app
        self._has_drain = drain is not None

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/deploys", self.endpoint.handle, methods=["POST"])]

    def jobs(self) -> Sequence[CollectorJob]:
        return [self.job]

    async def start(self) -> None:
        event = from_dyno_metadata(self._environ, self._default_app)
        if event is None:
            return
        try:
            async with asyncio.timeout(10.0):
                await self.store.record(event)
        except (ReleaseLogError, TimeoutError) as exc:
            log.warning("cannot record this dyno's release", error=str(exc) or "timeout")

    async def stop(self) -> None:
        await self.announcer.aclose()
        with contextlib.suppress(ReleaseLogError):
            await self.store.close()

    async def check(self) -> Sequence[CheckResult]:
        warnings = []
        if not self._has_drain:
            warnings.append("no log_drain: router latency, 5xx and H12 are not compared")
        detail = (
            f"settle {self.config.settle:g}s, window {self.config.window:g}s; markers in "
            f"{self.store.description}; {len(self.announcer.targets)} announce targets"
        )
        return [CheckResult("deploys", True, detail, tuple(warnings))]


def components(
    config: DeploysConfig | None,
    state_url: str,
    context: Context,
    drain: DrainState | None,
    targets: tuple[ChangeTarget, ...],
    default_app: str | None,
) -> Sequence[Component]:
    if config is None:
        return []
    store = open_deploy_store(state_url)
    return [DeploysComponent(config, context, store, drain, targets, default_app=default_app)]

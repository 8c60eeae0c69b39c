"""The shard's own source: what it watches, and whether the other shards are alive.

Every run exports ``monitor_shard_info{index,total}`` and one
``monitor_shard_target_info{kind,name}`` per owned target. With several shards and
``alertmanager`` receivers it also keeps a heartbeat in Alertmanager, the one thing all
shards share: an always-firing ``MonitorShardHeartbeat{monitor_shard="I",
monitor_shard_total="N"}`` alert, valid for three intervals (route it to a receiver
that notifies nobody, see docs/scale-out.md), and reads the others' back
(``GET /api/v2/alerts``). ``monitor_shard_up{shard="J"}`` is 1 while shard J's heartbeat
is active, else 0; the built-in ``MonitorShardDown`` rule fires on 0, on every live
shard with the same labels, so Alertmanager pages once for a dead shard whose targets
nobody watches.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx

from alerts.notify.events import iso
from alerts.receivers.alertmanager import display_url
from monitor import __version__
from monitor.kernel.redact import describe_error
from monitor.kernel.sharding import SELF, Shard, shard_samples
from monitor.kernel.snapshot import Sample, gauge
from monitor.kernel.source import CheckResult, CollectorJob, Source

HEARTBEAT = "MonitorShardHeartbeat"
SHARD_UP = gauge(
    "monitor_shard_up", "1 while the shard's heartbeat is seen in Alertmanager, else 0", "shard"
)
VALID_INTERVALS = 3


def heartbeat_alert(shard: Shard, started: float, now: float, valid_for: float) -> dict[str, Any]:
    return {
        "labels": {
            "alertname": HEARTBEAT,
            "monitor_shard": str(shard.index),
            "monitor_shard_total": str(shard.total),
        },
        "annotations": {"summary": f"app-monitor shard {shard} is alive"},
        "startsAt": _iso(started),
        "endsAt": _iso(now + valid_for),
    }


def live_shards(alerts: Any, total: int) -> set[int]:
    """Indexes of the shards (of ``total``) with an active heartbeat in an
    ``/api/v2/alerts`` answer; anything malformed is ignored."""
    seen: set[int] = set()
    if not isinstance(alerts, list):
        return seen
    for alert in alerts:
        labels = alert.get("labels") if isinstance(alert, dict) else None
        if not isinstance(labels, dict) or labels.get("alertname") != HEARTBEAT:
            continue
        if labels.get("monitor_shard_total") != str(total):
            continue
        index = labels.get("monitor_shard", "")
        if isinstance(index, str) and index in _names(total):
            seen.add(int(index))
    return seen


def _names(total: int) -> set[str]:
    return {str(i) for i in range(1, total + 1)}


class ShardJob(CollectorJob):
    collector = "shard"
    target = SELF

    def __init__(
        self, shard: Shard, owned: Sequence[Source], alertmanagers: Sequence[str], interval: float
    ) -> None:
        self.shard = shard
        self.owned = list(owned)
        self.alertmanagers = [u.rstrip("/") for u in alertmanagers]
        self.interval = interval
        self.timeout = min(10.0, max(2.0, interval))
        self.started = time.time()
        self._client: httpx.AsyncClient | None = None

    @property
    def heartbeats(self) -> bool:
        return self.shard.sharded and bool(self.alertmanagers)

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers={"User-Agent": f"app-monitor/{__version__}"}, follow_redirects=False
            )
        return self._client

    async def collect(self) -> Sequence[Sample]:
        samples = shard_samples(self.shard, self.owned)
        if not self.heartbeats:
            return samples
        live = await self.exchange()
        if time.time() - self.started < VALID_INTERVALS * self.interval:
            return samples  # the others may be starting too: judge them after a grace
        live.add(self.shard.index)
        samples.extend(
            SHARD_UP(1 if i in live else 0, str(i), target=SELF)
            for i in range(1, self.shard.total + 1)
        )
        return samples

    async def exchange(self) -> set[int]:
        """Post this shard's heartbeat to every instance, read every instance's view
        (merged: a heartbeat one instance missed is in the other's). Raises when no
        instance answered."""
        now = time.time()
        body = json.dumps(
            [heartbeat_alert(self.shard, self.started, now, VALID_INTERVALS * self.interval)]
        ).encode()
        answers = await asyncio.gather(*(self._one(url, body) for url in self.alertmanagers))
        views = [a for a in answers if not isinstance(a, str)]
        if not views:
            raise RuntimeError("no Alertmanager answered: " + "; ".join(map(str, answers)))
        return set().union(*views)

    async def _one(self, url: str, body: bytes) -> set[int] | str:
        client = self.client()
        try:
            posted = await client.post(
                f"{url}/api/v2/alerts",
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
            if posted.status_code != 200:
                return f"{display_url(url)}: heartbeat answered HTTP {posted.status_code}"
            read = await client.get(
                f"{url}/api/v2/alerts",
                params={"filter": f'alertname="{HEARTBEAT}"'},
                timeout=self.timeout,
            )
            if read.status_code != 200:
                return f"{display_url(url)}: alerts answered HTTP {read.status_code}"
            return live_shards(read.json(), self.shard.total)
        except (httpx.HTTPError, ValueError) as exc:
            return f"{display_url(url)}: {describe_error(exc)}"

    def failure_samples(self) -> Sequence[Sample]:
        return shard_samples(self.shard, self.owned)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class ShardSource(Source):
    kind = "shard"
    name = SELF

    def __init__(
        self, shard: Shard, owned: Sequence[Source], alertmanagers: Sequence[str], interval: float
    ) -> None:
        self.job = ShardJob(shard, owned, alertmanagers, interval)

    def jobs(self) -> Sequence[CollectorJob]:
        return (self.job,)

    async def check(self) -> CheckResult:
        shard = self.job.shard
        detail = f"shard {shard}: {len(self.job.owned)} targets"
        if not shard.sharded:
            return CheckResult("shard", True, detail)
        if not self.job.heartbeats:
            return CheckResult(
                "shard",
                True,
                detail,
                ("no alertmanager receiver: a dead shard's targets go unreported",),
            )
        try:
            live = await self.job.exchange()
        except RuntimeError as exc:
            return CheckResult("shard", False, f"{detail}; {exc}")
        return CheckResult("shard", True, f"{detail}; heartbeats seen from {sorted(live)}")

    async def close(self) -> None:
        await self.job.close()


def _iso(timestamp: float) -> str:
    return iso(timestamp) or ""

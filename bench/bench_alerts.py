"""Alerting benchmarks.

1. Rule evaluation: 200 threshold rules over 20,000 series (100 metrics x 200 series,
   1% of them over their threshold), plus the built-in pack; the view built from a real
   snapshot store each cycle as the daemon does. Target: under 50 ms per cycle.
2. Detection latency: a real daemon (collection interval 1 s, rule ``for: 2s``) and a
   local PagerDuty; the time from the moment a value crosses its threshold to the
   HTTP request arriving at the receiver. Budget: interval + for + 1 s = 4 s.

Run: ``uv run python bench/bench_alerts.py``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Sequence

from alerts.evaluator import EvalState, evaluate
from alerts.instance import Clock
from alerts.rules.ruleset import build_rules
from alerts.series import ViewBuilder
from monitor.app.config import validate
from monitor.app.daemon import Daemon
from monitor.kernel.snapshot import Sample, Snapshot, gauge
from monitor.kernel.snapshot_store import SnapshotStore
from monitor.kernel.source import CheckResult, CollectorJob, Source

METRICS = 100
SERIES_PER_METRIC = 200
RULES_PER_METRIC = 2
CYCLES = 60


def evaluation_bench() -> None:
    specs = [gauge(f"bench_metric_{m}", "bench", "instance") for m in range(METRICS)]
    store = SnapshotStore()
    for target in range(20):
        samples = []
        for m, spec in enumerate(specs):
            for i in range(SERIES_PER_METRIC // 20):
                hot = (m * 7 + i + target) % 100 == 0  # 1% over the threshold
                samples.append(spec(95.0 if hot else 50.0, f"i{i}", target=f"t{target}"))
        store.register("bench", f"t{target}", 15.0)
        store.put(
            Snapshot("bench", f"t{target}", tuple(samples), True, time.time(), 0.01),
            "success",
            15.0,
        )
    rules = [
        {
            "name": f"R{m}_{k}",
            "metric": spec.name,
            "op": ">",
            "threshold": 90 + k,
            "for": "1m",
            "clear": 80,
            "summary": "{{ labels.instance }} at {{ value }}",
        }
        for m, spec in enumerate(specs)
        for k in range(RULES_PER_METRIC)
    ]
    config = validate({"rules": rules, "state": {"url": "sqlite:///:memory:"}}, environ={})
    ruleset = build_rules(config.rules, postgres_targets=0)
    builder = ViewBuilder()
    state = EvalState()
    timings = []
    for cycle in range(CYCLES):
        now = Clock(1000.0 + cycle * 15, 1_800_000_000.0 + cycle * 15)
        started = time.perf_counter()
        view = builder.build(store, {})
        result = evaluate(ruleset.rules, view, state, now)
        timings.append(time.perf_counter() - started)
        state = result.state
        if cycle % 4 == 0:  # one job reports fresh samples, as between real cycles
            snap = store.snapshots()[cycle % 20]
            store.put(
                Snapshot(snap.collector, snap.target, snap.samples, True, time.time(), 0.01),
                "success",
                15.0,
            )
    series = view.series_count()
    firing = sum(1 for i in state.instances.values() if i.state.value == "firing")
    print(
        f"evaluation: {len(ruleset.rules)} rules ({len(ruleset.rules) - len(rules)} built-in) "
        f"over {series} series, {firing} firing: "
        f"median {statistics.median(timings) * 1000:.1f} ms, "
        f"p95 {sorted(timings)[int(len(timings) * 0.95)] * 1000:.1f} ms, "
        f"max {max(timings) * 1000:.1f} ms per cycle (target < 50 ms)"
    )


# --------------------------------------------------------------------------- latency

VALUE = gauge("bench_value", "a value the benchmark moves across the threshold")


class ValueJob(CollectorJob):
    collector = "bench"
    target = "bench"
    interval = 1.0
    timeout = 0.8

    def __init__(self) -> None:
        self.value = 0.0

    async def collect(self) -> Sequence[Sample]:
        return (VALUE(self.value, target="bench"),)


class ValueSource(Source):
    kind = "bench"
    name = "bench"

    def __init__(self) -> None:
        self.job = ValueJob()

    def jobs(self) -> Sequence[CollectorJob]:
        return [self.job]

    async def check(self) -> CheckResult:
        return CheckResult("bench", True, "")


class PagerDutyStub:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.port = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode().split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":")[1])
                body = json.loads(await reader.readexactly(length))
                self.arrivals.append((time.time(), body["event_action"]))
                reply = json.dumps({"status": "success", "dedup_key": body["dedup_key"]}).encode()
                writer.write(
                    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(reply)}\r\n\r\n".encode()
                    + reply
                )
                await writer.drain()


async def latency_bench(rounds: int = 8) -> None:
    stub = PagerDutyStub()
    server = await stub.start()
    config = validate(
        {
            "interval": "1s",
            "http": {"listen": "127.0.0.1:0"},
            "state": {"url": "sqlite:///:memory:"},
            "receivers": {
                "oncall": {
                    "type": "pagerduty",
                    "routing_key": "b" * 32,
                    "url": f"http://127.0.0.1:{stub.port}/v2/enqueue",
                }
            },
            "rules": [
                {
                    "name": "BenchHigh",
                    "metric": "bench_value",
                    "op": ">",
                    "threshold": 10,
                    "for": "2s",
                    "severity": "critical",
                }
            ],
        },
        environ={},
    )
    source = ValueSource()
    daemon = Daemon(config, sources=[source])
    task = asyncio.create_task(daemon.run())
    await asyncio.sleep(2.5)
    delays = []
    for i in range(rounds):
        await asyncio.sleep(0.37 * (i % 3))  # cross at different points of the cycle
        seen = len(stub.arrivals)
        crossed = time.time()
        source.job.value = 100.0
        while len(stub.arrivals) == seen:
            await asyncio.sleep(0.01)
        delays.append(stub.arrivals[-1][0] - crossed)
        source.job.value = 0.0
        while len(stub.arrivals) == seen + 1:
            await asyncio.sleep(0.01)
    daemon.request_stop()
    await task
    server.close()
    budget = 1.0 + 2.0 + 1.0
    print(
        f"latency: threshold crossed -> PagerDuty request, interval 1s, for 2s, {rounds} runs: "
        f"min {min(delays):.2f} s, median {statistics.median(delays):.2f} s, "
        f"max {max(delays):.2f} s (budget {budget:.0f} s)"
    )


def main() -> None:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    evaluation_bench()
    asyncio.run(latency_bench())


if __name__ == "__main__":
    main()

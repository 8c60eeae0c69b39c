"""remote_write: the series pushed are the series /metrics shows, the wire format, the
bounded queue, the outcome of each HTTP answer, retries, shutdown and ``monitor check``.

The receiver here is an ``httpx.MockTransport`` that decodes each request as Prometheus
does (snappy block format, then protobuf) and answers what a test needs, including the
429/5xx/4xx answers a real Prometheus cannot be made to give on demand. The end-to-end
push into a real Prometheus is in tests/deploy/test_prometheus_remote_write.py.
"""

from __future__ import annotations

import asyncio
import base64
import math
import struct
from collections.abc import Callable
from typing import Any

import cramjam
import httpx
import pytest
from conftest import make_config, run_daemon
from support import metric, parse_exposition, wait_for

from monitor.app.config import load_config
from monitor.kernel.component import Context
from monitor.kernel.config.loading import ConfigError
from monitor.kernel.exposition import Exposition
from monitor.kernel.redact import redact
from monitor.kernel.remote_write import component as component_module
from monitor.kernel.remote_write.client import Outcome, RemoteWriteClient
from monitor.kernel.remote_write.component import RemoteWriteComponent
from monitor.kernel.remote_write.encode import decode, encode
from monitor.kernel.remote_write.queue import SampleQueue
from monitor.kernel.remote_write.series import STALE_NAN, Batch, SeriesReader, is_stale_marker
from monitor.kernel.snapshot import Snapshot, counter, gauge, info
from monitor.kernel.snapshot_store import SnapshotStore

UP = gauge("x_up", "up")
HITS = counter("x_hits_total", "hits", "db")
QUERY = info("x_query_info", "query text", "queryid")
URL = "https://push.example.net/api/prom/push"
SECRET = "s3cret-Push-T0ken"


def put(store: SnapshotStore, target: str, *samples: object) -> None:
    store.put(Snapshot("x", target, tuple(samples), True, 1.7e9, 0.002), "success", 10.0)  # type: ignore[arg-type]


def populated_store() -> SnapshotStore:
    store = SnapshotStore()
    put(store, "a", UP(1, target="a"), HITS(5, "app", target="a"), QUERY(1, "42", target="a"))
    put(store, "b", UP(0, target="b"))
    return store


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Receiver:
    """Decodes remote_write requests; ``answer`` decides the response."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.headers: list[httpx.Headers] = []
        self.answer: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(204)

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = self.answer(request)
        if 200 <= response.status_code < 300:
            self.requests.append(decode(request.content))
            self.headers.append(request.headers)
        return response

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def points(self, name: str, **labels: str) -> list[tuple[int, float]]:
        out = []
        for req in self.requests:
            for ts in req.timeseries:
                got = {lbl.name: lbl.value for lbl in ts.labels}
                if got.get("__name__") == name and all(got.get(k) == v for k, v in labels.items()):
                    out.extend((s.timestamp, s.value) for s in ts.samples)
        return out


def component(
    receiver: Receiver, clock: Clock, store: SnapshotStore | None = None, **remote: Any
) -> RemoteWriteComponent:
    store = store or populated_store()
    config = make_config(remote_write={"url": URL, **remote})
    assert config.remote_write is not None
    context = Context(store, Exposition(store), config.http, config.interval)
    comp = RemoteWriteComponent(
        context, config.remote_write, transport=receiver.transport(), clock=clock
    )
    for collector in comp.collectors():  # as the daemon does
        context.exposition.register(collector)
    return comp


# -- the series ---------------------------------------------------------------------------


def test_pushed_series_are_the_exposed_series_plus_job_and_instance() -> None:
    store = populated_store()
    exposition = Exposition(store)
    reader = SeriesReader(exposition.registry, {"job": "app-monitor", "instance": "worker.1"})
    batch = reader.read(1_700_000_000.5)
    pushed = {
        frozenset((k, v) for k, v in key if k not in ("job", "instance")): value
        for key, value in zip(batch.keys, batch.values, strict=True)
    }
    exposed = {
        frozenset({("__name__", name), *labels}): value
        for (name, labels), value in parse_exposition(exposition.render().decode()).items()
    }
    assert pushed == exposed
    assert all(dict(key)["job"] == "app-monitor" for key in batch.keys)
    assert set(batch.timestamps) == {1_700_000_000_500}
    assert all(list(key) == sorted(key) for key in batch.keys)
    names = {dict(key)["__name__"] for key in batch.keys}
    assert {"x_up", "x_hits_total", "x_query_info", "monitor_build_info"} <= names


def test_sample_labels_win_over_push_labels() -> None:
    store = SnapshotStore()
    job = gauge("x_job_gauge", "a gauge with its own job label", "job")
    put(store, "a", job(1, "etl", target="a"))
    reader = SeriesReader(Exposition(store).registry, {"job": "app-monitor", "env": "prod"})
    keys = [dict(k) for k in reader.read(1.0).keys if dict(k)["__name__"] == "x_job_gauge"]
    assert keys == [
        {"__name__": "x_job_gauge", "target": "a", "job": "etl", "env": "prod"},
    ]


def test_vanished_series_get_a_staleness_marker_once() -> None:
    store = populated_store()
    reader = SeriesReader(Exposition(store).registry, {})
    first = reader.read(1.0)
    store.put(Snapshot("x", "b", (), True, 1.7e9, 0.001), "success", 10.0)  # b's x_up is gone
    second = reader.read(2.0)
    stale = [
        (dict(k), v) for k, v in zip(second.keys, second.values, strict=True) if is_stale_marker(v)
    ]
    assert [labels for labels, _ in stale] == [{"__name__": "x_up", "target": "b"}]
    # the exact bit pattern Prometheus' TSDB recognises (value.StaleNaN)
    assert struct.pack("<d", stale[0][1]) == struct.pack("<Q", 0x7FF0000000000002)
    assert not any(is_stale_marker(v) for v in reader.read(3.0).values)
    # keys are shared between collections, so a queued sample holds no label copies
    assert {id(k) for k in second.keys} <= {id(k) for k in first.keys}


# -- the wire format ----------------------------------------------------------------------


def test_encoding_is_snappy_block_protobuf_with_metadata() -> None:
    store = populated_store()
    reader = SeriesReader(Exposition(store).registry, {"job": "j"})
    queue = SampleQueue(1000)
    queue.put(reader.read(10.0))
    queue.put(reader.read(20.0))
    chunk = queue.take(1000)
    assert chunk is not None
    body = encode(chunk, reader.metadata.values())
    raw = bytes(cramjam.snappy.decompress_raw(body))  # block format, not framed
    request = decode(body)
    assert request.SerializeToString() == raw
    series = {
        tuple((lbl.name, lbl.value) for lbl in ts.labels): [
            (s.timestamp, s.value) for s in ts.samples
        ]
        for ts in request.timeseries
    }
    key = (("__name__", "x_hits_total"), ("db", "app"), ("job", "j"), ("target", "a"))
    assert series[key] == [(10_000, 5.0), (20_000, 5.0)]  # one series, both points, in order
    types = {m.metric_family_name: m.type for m in request.metadata}
    assert types["x_hits_total"] == 1  # COUNTER
    assert types["x_up"] == 2  # GAUGE
    assert types["x_query_info"] == 2  # info is a gauge in the text format, and here


# -- the queue ----------------------------------------------------------------------------


def batch_of(n: int, ts: int) -> Batch:
    batch = Batch()
    for i in range(n):
        batch.add((("__name__", f"m{i}"),), float(ts), ts)
    return batch


def test_queue_drops_the_oldest_first_and_says_how_many() -> None:
    queue = SampleQueue(max_samples=25)
    assert queue.put(batch_of(10, 1)) == 0
    assert queue.put(batch_of(10, 2)) == 0
    assert queue.put(batch_of(10, 3)) == 5  # half of the first collection goes
    assert len(queue) == 25
    chunk = queue.take(100)
    assert chunk is not None
    stamps = sorted(ts for points in chunk.series.values() for ts, _ in points)
    assert stamps == [1] * 5 + [2] * 10 + [3] * 10
    queue.sending = True  # a request carrying the chunk is on the wire: it stays whole
    assert queue.put(batch_of(10, 4)) == 10
    assert len(queue) == 25 and queue.in_flight is chunk and chunk.samples == 25
    queue.sending = False  # waiting for a retry: the oldest are in the chunk
    assert queue.put(batch_of(10, 5)) == 10
    assert len(queue) == 25 and chunk.body is None  # to be encoded again
    stamps = sorted(ts for points in chunk.series.values() for ts, _ in points)
    assert stamps == [2] * 5 + [3] * 10
    assert queue.put(batch_of(30, 6)) == 30  # everything older than the newest goes
    assert queue.in_flight is None and len(queue) == 25
    rest = queue.take(100)
    assert rest is not None and rest.samples == 25
    assert {ts for points in rest.series.values() for ts, _ in points} == {6}


def test_queue_takes_in_time_order_and_retries_the_same_chunk() -> None:
    queue = SampleQueue(max_samples=100)
    queue.put(batch_of(4, 1))
    queue.put(batch_of(4, 2))
    first = queue.take(6)
    assert first is not None and first.samples == 6
    assert first.series[(("__name__", "m0"),)] == [(1, 1.0), (2, 2.0)]
    assert first.series[(("__name__", "m3"),)] == [(1, 1.0)]
    assert queue.take(6) is first  # not done: the same request goes again
    queue.done()
    rest = queue.take(6)
    assert rest is not None and rest.samples == 2
    assert sorted(rest.series) == [(("__name__", "m2"),), (("__name__", "m3"),)]
    queue.done()
    assert queue.take(6) is None and len(queue) == 0


# -- one request --------------------------------------------------------------------------


async def answer_with(response: httpx.Response, **remote: Any) -> Any:
    receiver = Receiver()
    receiver.answer = lambda r: response
    config = make_config(remote_write={"url": URL, **remote}).remote_write
    assert config is not None
    client = RemoteWriteClient(config, receiver.transport())
    try:
        return await client.send(encode(None))
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (httpx.Response(204), Outcome.SENT),
        (httpx.Response(200), Outcome.SENT),
        (httpx.Response(500, text="tsdb closed"), Outcome.RETRY),
        (httpx.Response(503), Outcome.RETRY),
        (httpx.Response(429, text="ingestion rate limit"), Outcome.RETRY),
        (httpx.Response(400, text="out of order sample"), Outcome.REJECTED),
        (httpx.Response(401, text="invalid authentication credentials"), Outcome.REJECTED),
        (httpx.Response(302, headers={"location": "/x"}), Outcome.REJECTED),
    ],
)
async def test_answers_are_classified_as_the_spec_says(
    response: httpx.Response, outcome: Outcome
) -> None:
    result = await answer_with(response)
    assert result.outcome is outcome
    assert result.status_code == response.status_code
    if response.text:
        assert response.text in result.detail


async def test_retry_after_is_read() -> None:
    result = await answer_with(httpx.Response(429, headers={"Retry-After": "7"}))
    assert result.outcome is Outcome.RETRY and result.retry_after == 7.0


async def test_unreachable_receiver_is_a_retry_without_secrets() -> None:
    config = make_config(
        remote_write={"url": f"http://user:{SECRET}@127.0.0.1:9/push", "timeout": "2s"}
    ).remote_write
    assert config is not None
    client = RemoteWriteClient(config)
    result = await client.send(encode(None))
    await client.aclose()
    assert result.outcome is Outcome.RETRY
    assert SECRET not in result.detail and SECRET not in client.endpoint
    assert client.endpoint == "http://127.0.0.1:9/push"


async def test_headers_and_bearer_token() -> None:
    receiver = Receiver()
    config = make_config(
        remote_write={"url": URL, "bearer_token": SECRET, "headers": {"X-Scope-OrgID": "t1"}}
    ).remote_write
    assert config is not None
    client = RemoteWriteClient(config, receiver.transport())
    await client.send(encode(None))
    await client.aclose()
    headers = receiver.headers[0]
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["content-encoding"] == "snappy"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-prometheus-remote-write-version"] == "0.1.0"
    assert headers["x-scope-orgid"] == "t1"
    assert headers["user-agent"].startswith("app-monitor/")


async def test_basic_auth_as_grafana_cloud_wants_it() -> None:
    receiver = Receiver()
    config = make_config(
        remote_write={"url": URL, "username": "123456", "password": SECRET}
    ).remote_write
    assert config is not None
    client = RemoteWriteClient(config, receiver.transport())
    await client.send(encode(None))
    await client.aclose()
    expected = base64.b64encode(f"123456:{SECRET}".encode()).decode()
    assert receiver.headers[0]["authorization"] == f"Basic {expected}"


# -- the component ------------------------------------------------------------------------


async def test_outage_queues_then_delivers_everything_in_order() -> None:
    receiver, clock = Receiver(), Clock()
    comp = component(receiver, clock)
    down = True
    receiver.answer = lambda r: httpx.Response(503 if down else 204)
    for _ in range(5):
        comp.collect()
        result = await comp.push_one()
        assert result is not None and result.outcome is Outcome.RETRY
        clock.now += 15
    assert receiver.requests == []
    held = len(comp.queue)
    down = False
    while await comp.push_one() is not None:
        pass
    assert len(comp.queue) == 0
    points = receiver.points("x_up", target="a")
    assert [ts for ts, _ in points] == [int((1_700_000_000 + 15 * i) * 1000) for i in range(5)]
    assert comp.stats.samples["sent"] == held
    assert comp.stats.requests["retry"] == 5
    assert comp.stats.dropped == 0
    assert comp.stats.last_success == clock.now


async def test_full_queue_drops_oldest_and_counts_them() -> None:
    receiver, clock = Receiver(), Clock()
    comp = component(receiver, clock, max_queue_samples=40, max_samples_per_send=40)
    receiver.answer = lambda r: httpx.Response(503)
    per_collection = len(SeriesReader(comp._exposition.registry, {}).read(0).keys)
    total = 0
    for _ in range(6):
        comp.collect()
        total += per_collection
        await comp.push_one()
        clock.now += 15
    assert len(comp.queue) == 40
    assert comp.stats.dropped == total - 40
    receiver.answer = lambda r: httpx.Response(204)
    while await comp.push_one() is not None:
        pass
    assert comp.stats.samples["sent"] == 40
    delivered = sorted(
        s.timestamp for req in receiver.requests for ts in req.timeseries for s in ts.samples
    )
    newest = int((clock.now - 15) * 1000)
    assert delivered.count(newest) == per_collection  # the newest collection, whole
    assert len(delivered) == 40 and delivered[0] > 1_700_000_000_000  # not the oldest
    parsed = parse_exposition(comp._exposition.render().decode())
    assert metric(parsed, "monitor_remote_write_dropped_samples_total") == total - 40
    assert metric(parsed, "monitor_remote_write_samples_total", status="sent") == 40
    assert metric(parsed, "monitor_remote_write_queue_samples") == 0
    assert metric(parsed, "monitor_remote_write_queue_max_samples") == 40


async def test_rejected_requests_are_dropped_and_counted() -> None:
    receiver, clock = Receiver(), Clock()
    comp = component(receiver, clock)
    receiver.answer = lambda r: httpx.Response(400, text="out of order sample")
    comp.collect()
    samples = len(comp.queue)
    result = await comp.push_one()
    assert result is not None and result.outcome is Outcome.REJECTED
    assert len(comp.queue) == 0
    assert comp.stats.samples["rejected"] == samples
    assert comp.stats.requests["rejected"] == 1


async def test_large_collections_are_split_into_requests() -> None:
    receiver, clock = Receiver(), Clock()
    store = SnapshotStore()
    wide = gauge("x_wide", "many series", "n")
    put(store, "a", *(wide(i, str(i), target="a") for i in range(250)))
    comp = component(receiver, clock, store, max_samples_per_send=100)
    comp.collect()
    while await comp.push_one() is not None:
        pass
    sizes = [sum(len(ts.samples) for ts in req.timeseries) for req in receiver.requests]
    assert max(sizes) == 100 and sum(sizes) >= 250
    assert len(receiver.points("x_wide")) == 250
    # metadata rides along with the first request only (then once a minute)
    assert [len(req.metadata) > 0 for req in receiver.requests] == [True] + [False] * (
        len(sizes) - 1
    )


async def test_daemon_pushes_on_its_interval_and_once_more_at_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = Receiver()
    monkeypatch.setattr(
        component_module,
        "RemoteWriteClient",
        lambda config, transport: RemoteWriteClient(config, receiver.transport()),
    )
    config = make_config(interval="1s", remote_write={"url": URL, "interval": "200ms"})
    async with run_daemon(config) as running:
        await wait_for(lambda: len(receiver.requests) >= 3, timeout=10)
        before = len(receiver.requests)
        assert await running.stop() == 0
    assert len(receiver.requests) > before  # the final push
    build = receiver.points("monitor_build_info")
    assert len(build) == len(receiver.requests)
    assert [ts for ts, _ in build] == sorted(ts for ts, _ in build)
    # scraped and pushed alike: the push's own metrics are on /metrics
    assert receiver.points("monitor_remote_write_queue_max_samples")[0][1] == 500_000


async def test_stop_is_bounded_when_the_receiver_hangs() -> None:
    receiver, clock = Receiver(), Clock()
    comp = component(receiver, clock, timeout="30s")
    release = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(204)

    comp._transport = httpx.MockTransport(hang)
    comp.collect()
    # the final push gives up at FINAL_PUSH_SECONDS, well inside the daemon's deadline
    await asyncio.wait_for(comp.stop(), timeout=10)
    release.set()
    assert len(comp.queue) == 0  # forgotten (and logged), not pushed


async def test_check_sends_an_empty_write() -> None:
    receiver, clock = Receiver(), Clock()
    comp = component(receiver, clock)
    [ok] = await comp.check()
    assert ok.ok and "accepts writes" in ok.detail
    assert len(receiver.requests) == 1 and len(receiver.requests[0].timeseries) == 0
    receiver.answer = lambda r: httpx.Response(401, text="authentication error")
    [bad] = await comp.check()
    assert not bad.ok and "HTTP 401" in bad.detail and URL in bad.detail


def test_environment_configures_the_push() -> None:
    config = load_config(
        None,
        environ={
            "REMOTE_WRITE_URL": URL,
            "REMOTE_WRITE_USERNAME": "123",
            "REMOTE_WRITE_PASSWORD": SECRET,
            "REMOTE_WRITE_INTERVAL": "60s",
            "REMOTE_WRITE_MAX_QUEUE_SAMPLES": "10000",
            "DYNO": "worker.1",
        },
    )
    rw = config.remote_write
    assert rw is not None and rw.interval == 60.0 and rw.max_queue_samples == 10_000
    assert config.http.listen == "127.0.0.1:9187"  # a worker dyno is not routed to
    assert redact(f"push to {URL} with {SECRET}") == "push to *** with ***"


@pytest.mark.parametrize(
    ("remote", "problem"),
    [
        ({"username": "u"}, "username and password must be set together"),
        ({"bearer_token": "t", "username": "u", "password": "p"}, "either bearer_token"),
        ({"max_queue_samples": 10}, "must be at least max_samples_per_send"),
        ({"labels": {"__name__": "x"}}, "invalid label name"),
        ({"headers": {"Content-Encoding": "gzip"}}, "set by the daemon"),
        ({"interval": 15}, "needs a unit"),
    ],
)
def test_bad_push_config_is_refused(remote: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(remote_write={"url": URL, **remote})
    assert any(problem in line for line in err.value.problems), err.value.problems


def test_stale_marker_survives_encoding() -> None:
    batch = Batch()
    batch.add((("__name__", "gone"),), STALE_NAN, 1)
    queue = SampleQueue(10)
    queue.put(batch)
    request = decode(encode(queue.take(10)))
    value = request.timeseries[0].samples[0].value
    assert math.isnan(value) and is_stale_marker(value)

"""SelfMetricsText writes prometheus_client's bytes for the self-metrics, a job's lines
formatted again only when its status changed."""

from __future__ import annotations

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from monitor.kernel import self_metrics_text
from monitor.kernel.exposition import StoreCollector
from monitor.kernel.self_metrics_text import SelfMetricsText
from monitor.kernel.snapshot_store import JobStatus, SnapshotStore

ODD = 'a"b\\c\nd é'


def statuses() -> list[JobStatus]:
    return [
        JobStatus("postgres", "primary", 15.0, True, 0.004, 1.7e9, None, {"success": 12}),
        JobStatus("redis", ODD, 15.0, False, 2.5, None, "boom", {"success": 0, "error": 3}),
        JobStatus("never_ran", "t", 15.0),  # no up, duration or last success yet
        JobStatus(ODD, "x", 60.0, True, 1234567.0, 1.7e9 + 0.5, None, {"timeout": 1, "a": 2}),
    ]


class Frozen(StoreCollector):
    def __init__(self, jobs: list[JobStatus]) -> None:
        super().__init__(SnapshotStore())
        self.jobs = jobs

    def collect(self):  # type: ignore[no-untyped-def]
        yield from self.self_metrics(self.jobs)


@pytest.mark.parametrize("openmetrics", [False, True])
def test_same_bytes_as_prometheus_client(openmetrics: bool) -> None:
    jobs = statuses()
    text = SelfMetricsText(StoreCollector(SnapshotStore()).self_metrics)
    expected = (
        generate_openmetrics(Frozen(jobs)).removesuffix(b"# EOF\n")  # type: ignore[no-untyped-call]
        if openmetrics
        else generate_latest(Frozen(jobs))
    )
    assert text.render(jobs, openmetrics).encode() == expected
    # a job that ran again, one gone, one new: still the same bytes
    jobs[0].runs["success"] += 1
    jobs[0].last_duration = 0.5
    del jobs[1]
    jobs.append(JobStatus("memcached", "mc", 15.0, True, 0.001, 1.8e9, None, {"success": 1}))
    expected = (
        generate_openmetrics(Frozen(jobs)).removesuffix(b"# EOF\n")  # type: ignore[no-untyped-call]
        if openmetrics
        else generate_latest(Frozen(jobs))
    )
    assert text.render(jobs, openmetrics).encode() == expected


def test_only_jobs_whose_status_changed_are_formatted(monkeypatch: pytest.MonkeyPatch) -> None:
    formatted: list[str] = []
    original = self_metrics_text._lines

    def counting(key, values):  # type: ignore[no-untyped-def]
        formatted.append(key[0])
        return original(key, values)

    monkeypatch.setattr(self_metrics_text, "_lines", counting)
    jobs = statuses()
    text = SelfMetricsText(StoreCollector(SnapshotStore()).self_metrics)
    text.render(jobs)
    assert len(formatted) == 4
    jobs[0].runs["success"] += 1
    before = text.render(jobs, openmetrics=True)
    assert formatted[4:] == ["postgres"]
    assert (
        'monitor_collector_runs_total{collector="postgres",status="success",target="primary"} 13.0'
        in before
    )

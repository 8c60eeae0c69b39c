"""The daemon's self-metrics (one set per collector job) as exposition text, per job cached.

A fleet has hundreds of jobs: 140 targets make ~440, so ~2,600 self-metric samples.
Built as prometheus_client families and formatted on every render, they were the larger
part of a render (~10 ms), and a render ahead runs after every burst of collections.
Between two renders only the jobs that ran have a new status, so :class:`SelfMetricsText`
keeps each job's lines and formats again only the jobs whose status changed. The bytes
are those of :func:`~monitor.kernel.family_text.render_families` over
:meth:`~monitor.kernel.exposition.StoreCollector.self_metrics`: the family headers (and
the build info) come from it, and sample lines are alike in both formats.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.metrics_core import Metric

from monitor.kernel.family_text import render_families
from monitor.kernel.snapshot_store import JobKey, JobStatus
from monitor.kernel.store_text import escape_label, go_float

_Values = tuple[bool | None, float, float | None, tuple[tuple[str, float], ...]]
_Lines = tuple[str, str, str, str]
"""A job's lines in the up, duration, last-success and runs families."""


class SelfMetricsText:
    """Renders job statuses' self-metrics, formatting only the jobs that changed."""

    def __init__(self, families: Callable[[Iterable[JobStatus]], Iterator[Metric]]) -> None:
        self._families = families
        self._lock = threading.Lock()
        self._parts: dict[bool, list[str]] = {}
        """Per format: the four families' headers, then the build info family."""
        self._jobs: dict[JobKey, tuple[_Values, _Lines]] = {}

    def render(self, statuses: Sequence[JobStatus], openmetrics: bool = False) -> str:
        """The self-metrics of ``statuses`` (copies: this may run in a worker thread)."""
        with self._lock:
            parts = self._parts.get(openmetrics)
            if parts is None:
                parts = self._parts[openmetrics] = [
                    render_families([family], openmetrics) for family in self._families(())
                ]
            columns: tuple[list[str], ...] = ([], [], [], [])
            for status in statuses:
                key = (status.collector, status.target)
                values = (
                    status.up,
                    status.last_duration,
                    status.last_success,
                    tuple(sorted(status.runs.items())),
                )
                cached = self._jobs.get(key)
                if cached is None or cached[0] != values:
                    cached = self._jobs[key] = (values, _lines(key, values))
                for column, lines in zip(columns, cached[1], strict=True):
                    column.append(lines)
            if len(self._jobs) > len(statuses):  # jobs gone: forget their lines
                live = {(s.collector, s.target) for s in statuses}
                self._jobs = {k: v for k, v in self._jobs.items() if k in live}
            *headers, build_info = parts
            out = []
            for header, column in zip(headers, columns, strict=True):
                out.append(header)
                out.extend(column)
            out.append(build_info)
            return "".join(out)


def _lines(key: JobKey, values: _Values) -> _Lines:
    collector, target = escape_label(key[0]), escape_label(key[1])
    labels = f'collector="{collector}",target="{target}"'
    up, duration, last_success, runs = values
    up_line = duration_line = last_line = ""
    if up is not None:
        up_line = f"monitor_collector_up{{{labels}}} {'1.0' if up else '0.0'}\n"
        duration_line = (
            f"monitor_collector_duration_seconds{{{labels}}} {go_float(float(duration))}\n"
        )
    if last_success is not None:
        last_line = (
            f"monitor_collector_last_success_timestamp_seconds{{{labels}}} "
            f"{go_float(float(last_success))}\n"
        )
    runs_lines = "".join(
        f'monitor_collector_runs_total{{collector="{collector}",status="{escape_label(status)}",'
        f'target="{target}"}} {go_float(float(count))}\n'
        for status, count in runs
    )
    return up_line, duration_line, last_line, runs_lines

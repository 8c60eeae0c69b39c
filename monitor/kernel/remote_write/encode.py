"""Encode a chunk as a remote_write 1.0 request body: protobuf ``WriteRequest``, then
snappy in the block format (not the framed one), as the protocol specifies
(https://prometheus.io/docs/specs/remote_write_spec/).
"""

from __future__ import annotations

from collections.abc import Iterable

import cramjam

from monitor.kernel.remote_write.proto import METRIC_TYPES, WriteRequest
from monitor.kernel.remote_write.queue import Chunk
from monitor.kernel.remote_write.series import Metadata

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def encode(chunk: Chunk | None, metadata: Iterable[Metadata] = ()) -> bytes:
    """The compressed body for ``chunk`` (None: an empty request, to test the endpoint)."""
    request = WriteRequest()
    if chunk is not None:
        timeseries = request.timeseries
        for key, points in chunk.series.items():
            series = timeseries.add()
            labels = series.labels
            for name, text in key:
                labels.add(name=name, value=text)
            samples = series.samples
            for timestamp, number in points:
                samples.add(value=number, timestamp=timestamp)
    for meta in metadata:
        request.metadata.add(
            type=METRIC_TYPES.get(meta.type, 0), metric_family_name=meta.name, help=meta.help
        )
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def decode(body: bytes) -> object:
    """The ``WriteRequest`` in a compressed body (for tests and the benchmark)."""
    request = WriteRequest()
    request.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
    return request

"""The remote_write 1.0 messages (``prometheus.WriteRequest`` and what it holds).

protoc is not needed: the message classes are built at import time from a descriptor
written out here with protobuf's descriptor API, field for field as upstream's
``prompb/remote.proto`` and ``prompb/types.proto`` (prometheus/prometheus), limited to what
this daemon sends (labels, float samples, metadata)::

    message WriteRequest { repeated TimeSeries timeseries = 1; reserved 2;
                           repeated MetricMetadata metadata = 3; }
    message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    message Label        { string name = 1; string value = 2; }
    message Sample       { double value = 1; int64 timestamp = 2; }  // ms since epoch
    message MetricMetadata { MetricType type = 1; string metric_family_name = 2;
                             string help = 4; string unit = 5; }

Unknown to a receiver or not, fields keep their upstream numbers, so the bytes are what
Prometheus' own remote_write sends.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _field(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: int,
    *,
    repeated: bool = False,
    type_name: str = "",
) -> None:
    field = message.field.add(name=name, number=number, type=kind)
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        field.type_name = type_name


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="app_monitor/prometheus_remote.proto", package="prometheus", syntax="proto3"
    )
    label = file.message_type.add(name="Label")
    _field(label, "name", 1, _F.TYPE_STRING)
    _field(label, "value", 2, _F.TYPE_STRING)

    sample = file.message_type.add(name="Sample")
    _field(sample, "value", 1, _F.TYPE_DOUBLE)
    _field(sample, "timestamp", 2, _F.TYPE_INT64)

    series = file.message_type.add(name="TimeSeries")
    _field(series, "labels", 1, _F.TYPE_MESSAGE, repeated=True, type_name=".prometheus.Label")
    _field(series, "samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name=".prometheus.Sample")

    metadata = file.message_type.add(name="MetricMetadata")
    kinds = metadata.enum_type.add(name="MetricType")
    for number, name in enumerate(
        (
            "UNKNOWN",
            "COUNTER",
            "GAUGE",
            "HISTOGRAM",
            "GAUGEHISTOGRAM",
            "SUMMARY",
            "INFO",
            "STATESET",
        )
    ):
        kinds.value.add(name=name, number=number)
    _field(metadata, "type", 1, _F.TYPE_ENUM, type_name=".prometheus.MetricMetadata.MetricType")
    _field(metadata, "metric_family_name", 2, _F.TYPE_STRING)
    _field(metadata, "help", 4, _F.TYPE_STRING)
    _field(metadata, "unit", 5, _F.TYPE_STRING)

    request = file.message_type.add(name="WriteRequest")
    _field(
        request, "timeseries", 1, _F.TYPE_MESSAGE, repeated=True, type_name=".prometheus.TimeSeries"
    )
    request.reserved_range.add(start=2, end=3)
    _field(
        request,
        "metadata",
        3,
        _F.TYPE_MESSAGE,
        repeated=True,
        type_name=".prometheus.MetricMetadata",
    )
    return file


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file())


def _message(name: str) -> Any:
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"prometheus.{name}"))


WriteRequest: Any = _message("WriteRequest")
TimeSeries: Any = _message("TimeSeries")
Label: Any = _message("Label")
Sample: Any = _message("Sample")
MetricMetadata: Any = _message("MetricMetadata")

METRIC_TYPES: dict[str, int] = {
    "unknown": 0,
    "counter": 1,
    "gauge": 2,
    "histogram": 3,
    "gaugehistogram": 4,
    "summary": 5,
    "info": 6,
    "stateset": 7,
}
"""prometheus_client family types -> ``MetricMetadata.MetricType`` numbers."""

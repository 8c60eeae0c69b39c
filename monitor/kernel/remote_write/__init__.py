"""Push everything ``/metrics`` shows with the Prometheus remote_write 1.0 protocol.

For hosts that cannot be scraped, such as a Heroku ``worker`` dyno: every interval the
daemon reads its own exposition registry, queues the samples with a timestamp, and POSTs
them (protobuf ``WriteRequest``, snappy, basic auth or bearer token) to Grafana Cloud,
Mimir or a Prometheus with ``--web.enable-remote-write-receiver``. Modules:

* :mod:`.proto`: the message classes, built from a descriptor (no protoc);
* :mod:`.series`: the registry read as series, with staleness markers;
* :mod:`.queue`: the bounded queue (oldest dropped first, counted);
* :mod:`.encode`: protobuf + snappy;
* :mod:`.client`: one POST, classified as sent, retry or rejected;
* :mod:`.stats`: the ``monitor_remote_write_*`` self-metrics;
* :mod:`.component`: the daemon component running it all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.kernel.component import Component, Context
    from monitor.kernel.remote_write.config import RemoteWriteConfig


def components(config: RemoteWriteConfig | None, context: Context) -> list[Component]:
    """The push component when ``remote_write`` is configured (component factory)."""
    if config is None:
        return []
    from monitor.kernel.remote_write.component import RemoteWriteComponent

    return [RemoteWriteComponent(context, config)]

"""The ``targets.memcached`` section: Memcached / MemCachier targets."""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import AfterValidator, SecretStr, model_validator

from monitor.kernel.config.types import Duration, Model, Name

MEMCACHED_PORT = 11211


_SERVER = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\s\[\]]+))(?::(?P<port>\d+))?$")


def parse_servers(value: str) -> tuple[tuple[str, int], ...]:
    """``"host:port, host2"`` -> ``(("host", port), ("host2", 11211))``."""
    out: list[tuple[str, int]] = []
    for item in (v for v in re.split(r"[\s,]+", value) if v):
        m = _SERVER.match(item)
        port = int(m["port"]) if m and m["port"] else MEMCACHED_PORT
        if not m or not 0 < port < 65536:
            raise ValueError(f"invalid memcached server {item!r}; expected host:port")
        out.append((m["v6"] or m["host"], port))
    if not out:
        raise ValueError("servers is empty; expected host:port[,host:port]")
    if len(set(out)) != len(out):
        raise ValueError(f"servers lists a server twice: {value!r}")
    return tuple(out)


def _servers(value: str) -> str:
    parse_servers(value)
    return value


class MemcachedTarget(Model):
    """A Memcached server or a MemCachier cache (``servers`` as ``host:port[,host:port]``).

    With ``username`` (and ``password``) set, the monitor authenticates with SASL PLAIN
    over the binary protocol, as MemCachier requires; otherwise it uses the text protocol.
    """

    name: Name
    servers: Annotated[str, AfterValidator(_servers)]
    username: str | None = None
    password: SecretStr | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    """Deadline of one collection; defaults to 80% of the interval, at most 10s."""
    connect_timeout: Duration = 5.0

    @model_validator(mode="after")
    def _credentials_pair(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be set together for SASL")
        return self

    @property
    def server_list(self) -> tuple[tuple[str, int], ...]:
        return parse_servers(self.servers)

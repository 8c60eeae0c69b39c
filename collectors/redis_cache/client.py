"""The redis-py asyncio client for one target: timeouts, one quick retry, TLS options.

``rediss://`` certificate verification is on unless the target sets ``tls_verify:
false`` or the daemon runs on Heroku (``$DYNO`` set) and the target leaves it unset:
Heroku Key-Value Store presents self-signed certificates. The TLS options are passed
only for ``rediss://`` URLs (redis-py rejects them for plain connections, redis-py#3217).
The client never sends ``CONFIG`` (managed Redis forbids it); everything comes from
``INFO``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from collectors.redis_cache.config import RedisTarget


def tls_verify(target: RedisTarget, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to verify the server certificate of a ``rediss://`` target."""
    if target.tls_verify is not None:
        return target.tls_verify
    env = os.environ if environ is None else environ
    return not env.get("DYNO")


def client_kwargs(
    target: RedisTarget, timeout: float, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": target.connect_timeout,
        "socket_timeout": timeout,
        # a connection dropped by a restart is retried once at once, on a new connection
        "retry": Retry(NoBackoff(), 1),
        "decode_responses": True,
        "max_connections": 2,
    }
    if target.uses_tls:
        if tls_verify(target, environ):
            if target.tls_ca_file:
                kwargs["ssl_ca_certs"] = target.tls_ca_file
        else:
            kwargs["ssl_cert_reqs"] = "none"
            kwargs["ssl_check_hostname"] = False
    return kwargs


def make_client(
    target: RedisTarget, timeout: float, environ: Mapping[str, str] | None = None
) -> Redis:
    client: Redis = Redis.from_url(
        target.url.get_secret_value(), **client_kwargs(target, timeout, environ)
    )
    return client

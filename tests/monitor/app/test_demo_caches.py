"""``monitor demo``'s Redis and Memcached: started when installed, with traffic, watched."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from support import require_binary, wait_for

from monitor.app.config import validate
from monitor.app.demo import caches as demo_caches_module
from monitor.app.demo import demo_config
from monitor.app.demo.caches import DemoCaches, demo_caches, run_cache_traffic
from monitor.app.plugins import build_sources
from monitor.kernel.snapshot import value_of

pytestmark = pytest.mark.timeout(120)


async def test_demo_caches_get_traffic_and_are_watched(tmp_path: Path) -> None:
    require_binary("redis-server")
    require_binary("memcached")
    with demo_caches() as caches:
        assert caches.redis_url and caches.memcached
        stop = threading.Event()
        traffic = threading.Thread(target=run_cache_traffic, args=(caches, stop), daemon=True)
        traffic.start()
        try:
            doc = demo_config("postgresql://postgres@127.0.0.1:1/postgres", None, "127.0.0.1:0",
                              tmp_path, caches)  # fmt: skip
            config = validate(doc, environ={})
            sources = [s for s in build_sources(config) if s.kind in ("redis", "memcached")]
            assert sorted(s.kind for s in sources) == ["memcached", "redis"]
            jobs = {s.kind: s.jobs()[0] for s in sources}

            async def both_counting() -> bool:
                redis = await jobs["redis"].collect()
                memcached = await jobs["memcached"].collect()
                return bool(
                    value_of(redis, "redis_keyspace_hits_total")
                    and value_of(memcached, "memcached_get_hits_total")
                )

            assert await wait_for(both_counting, timeout=30, interval=0.2)
            for source in sources:
                await source.close()
        finally:
            stop.set()
            traffic.join(timeout=10)
        assert not traffic.is_alive()


def test_demo_without_cache_binaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(demo_caches_module.shutil, "which", lambda name: None)
    with demo_caches() as caches:
        assert caches == DemoCaches(None, None)
        doc = demo_config("postgresql://postgres@127.0.0.1:1/postgres", None, "127.0.0.1:0",
                          tmp_path, caches)  # fmt: skip
        assert set(doc["targets"]) == {"postgres"}
        stop = threading.Event()
        stop.set()
        run_cache_traffic(caches, stop)  # returns at once with nothing to do

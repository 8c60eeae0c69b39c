"""Close connections from synchronous hooks (``on_timeout``) without losing the task."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class BackgroundCloser:
    """Runs close coroutines as tasks, keeps them referenced, and awaits them at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def close_later(self, closing: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(closing)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

"""One background chore run every so often on its own task: the pruners of the outbox, the message store
and the media store share it.

A failed run is logged and the next one comes at the usual time; cancelling the task (``stop``) is the only
way out of the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger("gateway.periodic")


class Periodic:
    """Runs ``chore`` now, then every ``interval_s`` seconds, until stopped."""

    def __init__(self, chore: Callable[[], Awaitable[Any]], interval_s: float, *, name: str) -> None:
        self.chore = chore
        self.interval_s = interval_s
        self.name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.chore()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(f"{self.name}.failed")
            await asyncio.sleep(self.interval_s)

"""Message retention: messages older than ``MESSAGE_RETENTION_DAYS`` are deleted, in small batches.

Each batch is one short group-commit job (at most :data:`~gateway.store.messages.PRUNE_BATCH`
rows, found without a table scan), with a pause between batches, so sends and
receipts never wait behind a long delete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from gateway.periodic import Periodic
from gateway.store import Store
from gateway.store.messages import PRUNE_BATCH

log = structlog.get_logger("gateway.messages")


class MessageRetention:
    def __init__(
        self,
        store: Store,
        days: int,
        *,
        clock: Callable[[], float] = time.time,
        interval_s: float = 600.0,
        batch: int = PRUNE_BATCH,
        pause_s: float = 0.02,
    ) -> None:
        self.store = store
        self.days = days
        self.clock = clock
        self.interval_s = interval_s
        self.batch = batch
        self.pause_s = pause_s
        self._every = Periodic(self.prune, interval_s, name="message-pruner")

    async def prune(self) -> int:
        """Delete every message stored before the retention window; returns how many."""
        before = self.clock() - self.days * 86400
        total, batch = 0, self.batch
        while True:
            deleted, more = await self.store.prune_messages(before, batch)
            total += deleted
            if not more:
                break
            await asyncio.sleep(self.pause_s)  # let other writers in between batches
        if total:
            await self.store.prune_chats(before)
            log.info("messages.pruned", rows=total)
        return total

    def start(self) -> None:
        self._every.start()

    async def stop(self) -> None:
        await self._every.stop()

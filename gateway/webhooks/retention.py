"""Retention: delivered outbox rows are deleted after ``WEBHOOK_RETENTION_HOURS``
(pending and failed rows stay: they are work, or evidence)."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from gateway.periodic import Periodic
from gateway.settings import Settings
from gateway.store import Store

log = structlog.get_logger("gateway.webhooks")


class Retention:
    """Prunes delivered rows now and then, on its own task."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        interval_s: float = 600.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.interval_s = interval_s
        self._every = Periodic(self.prune, interval_s, name="webhook-pruner")

    async def prune(self) -> int:
        """Delete delivered rows older than ``WEBHOOK_RETENTION_HOURS``."""
        before = self.clock() - self.settings.webhook_retention_hours * 3600
        removed = await self.store.prune_delivered(before)
        if removed:
            log.info("webhook.pruned", rows=removed)
        return removed

    def start(self) -> None:
        self._every.start()

    async def stop(self) -> None:
        await self._every.stop()

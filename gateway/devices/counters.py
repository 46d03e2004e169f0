"""Send counters, written behind.

A send must not wait for a disk write, so a send only marks its device's
counter as unsaved; within ``STATS_FLUSH_S`` one transaction stores the
counters of every device that sent meanwhile. A crash loses at most that much
counting; a graceful stop (:meth:`SendCounters.stop`) loses none. A failed
flush keeps its devices for the next one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from gateway.store import Store

if TYPE_CHECKING:
    from gateway.devices.device import Device

log = structlog.get_logger("gateway.devices")

STATS_FLUSH_S = 0.25  # send counters reach the store this long after a send, in one write for all devices


class SendCounters:
    """The write-behind of every device's send counter."""

    def __init__(self, store: Store, flush_after_s: float = STATS_FLUSH_S) -> None:
        self.store = store
        self.flush_after_s = flush_after_s
        self.running = False  # flushes are scheduled only between start() and stop()
        self._unsaved: dict[str, Device] = {}  # send counters not yet in the store
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        """Write what is still unsaved; nothing is scheduled afterwards."""
        self.running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.gather(*self._flushes, return_exceptions=True)
        await self.flush()

    def changed(self, device: Device) -> None:
        """A send moved ``device``'s counter: the store gets it with the next flush."""
        self._unsaved[device.token] = device
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is None and self.running:
            self._timer = asyncio.get_running_loop().call_later(self.flush_after_s, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        task = asyncio.create_task(self.flush(), name="stats-flush")
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        """Write the counters of every device with unsaved sends (one transaction)."""
        batch, self._unsaved = self._unsaved, {}
        if not batch:
            return
        try:
            await self.store.save_stats([d.row for d in batch.values()])
        except Exception:
            log.exception("devices.stats_flush_failed", devices=len(batch))
            for token, device in batch.items():  # kept for the next flush
                self._unsaved.setdefault(token, device)
            self._schedule()

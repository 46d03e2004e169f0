"""Reconnecting a paired device after a dropped connection, with backoff.

One :class:`Reconnector` per device runs at most one loop at a time: capped
exponential backoff (``RECONNECT_BASE_MS`` doubling up to ``RECONNECT_MAX_MS``)
with 0.8–1.0 jitter so a thousand devices dropped together do not dial back
in step, and a gateway-wide cap on dials in flight (the manager's
``connect_slots``). The loop ends once a connect call returns: the driver's
``Connected`` event, handled by the pump, is what marks the device connected
(and resets the attempt count).
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from typing import TYPE_CHECKING

import structlog

from gateway.drivers.base import ConnectError, DriverError

if TYPE_CHECKING:
    from gateway.devices.device import Device

log = structlog.get_logger("gateway.devices")


class Reconnector:
    """The reconnect loop of one device."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.attempt = 0  # failed dials since the last connection; drives the backoff
        self._task: asyncio.Task[None] | None = None

    def schedule(self, immediately: bool = False) -> None:
        """Start the loop unless one is running; ``immediately`` skips the first delay (restore at start-up)."""
        if self._task is None or self._task.done():
            # A fresh context: the loop outlives the request or event that started it.
            self._task = asyncio.create_task(
                self._run(immediately), name=f"reconnect-{self.device.token}", context=contextvars.Context()
            )

    def cancel(self) -> None:
        """Stop the loop (not when called from the loop itself, which then simply returns)."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def connected(self) -> None:
        """The device is connected: the next drop starts the backoff from the beginning."""
        self.attempt = 0

    async def _run(self, immediately: bool) -> None:
        device = self.device
        manager = device.m
        s = manager.settings
        while True:
            if not immediately or self.attempt:
                delay = min(s.reconnect_max_ms, s.reconnect_base_ms * 2 ** min(self.attempt, 30)) / 1000
                await asyncio.sleep(delay * random.uniform(0.8, 1.0))
            if device.row.status == "connected":
                return
            self.attempt += 1
            try:
                async with manager.connect_slots:
                    await asyncio.wait_for(device.driver.connect(device.row.method), s.connect_timeout_ms / 1000)  # type: ignore[arg-type]
                manager.reconnects += 1
                return
            except (ConnectError, TimeoutError) as exc:
                device.last_error = str(exc) or "connection timed out"
                log.info("device.reconnect_failed", token=device.token, attempt=self.attempt, error=str(exc))
            except DriverError as exc:
                log.warning("device.reconnect_error", token=device.token, error=str(exc))

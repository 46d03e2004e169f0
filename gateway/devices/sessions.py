"""The registry's answers to a driver whose sessions share the database (neonize on ``DATABASE_URL``).

A driver may not import the store; the composition root hands it a
:class:`StoreSessions` (the seam's :class:`~gateway.drivers.base.SessionDirectory`)
instead. :func:`upgrade_shared_sessions` runs whatsmeow's schema upgrade once,
under the store's advisory lock, before any device connects: whatsmeow's
upgrade takes no lock, and eight nodes upgrading a fresh database at once
leave seven failed. Then, under the same lock, it fences whatsmeow's tables
(a trigger refusing a write from a node of the cluster that does not hold
the device's lease), tables the upgrade may just have made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from gateway.store import WHATSMEOW_LOCK_KEY, Store

__all__ = ["StoreSessions", "upgrade_shared_sessions"]

log = structlog.get_logger("gateway.devices")


class StoreSessions:
    """:class:`~gateway.drivers.base.SessionDirectory` over the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def stored_jid(self, token: str) -> str | None:
        return await self.store.device_jid(token)

    async def session_exists(self, jid: str) -> bool:
        return await self.store.whatsmeow_session_exists(jid)

    async def forget_session(self, jid: str) -> None:
        await self.store.delete_whatsmeow_session(jid)


async def upgrade_shared_sessions(store: Store, upgrade: Callable[[], int]) -> int:
    """Run ``upgrade`` (blocking: whatsmeow's schema upgrade) on a thread, holding the advisory lock
    every node takes for it, then fence whatsmeow's per-device tables; returns the number of WhatsApp
    devices the shared store holds."""
    async with store.exclusive(WHATSMEOW_LOCK_KEY):
        devices = await asyncio.to_thread(upgrade)
        fenced = await store.install_whatsmeow_fence()
    log.info("whatsmeow.schema_ready", devices=devices, fenced_tables=len(fenced))
    return devices

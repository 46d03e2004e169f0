"""The store, ``gateway.db``: the only code that speaks SQL.

:class:`Store` gathers the queries of each concept (devices, contacts, the
webhook outbox, idempotency, accounts) over one :class:`~gateway.store.db.Db`.
A PostgreSQL backend would stand beside it with the same methods.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

from gateway.store.accounts import AccountQueries
from gateway.store.contacts import ContactQueries, ContactRow, upsert_contacts_sync
from gateway.store.db import Db
from gateway.store.devices import (
    DeviceQueries,
    DeviceRow,
    device_values,
    save_device_sync,
    save_stats_sync,
    stats_values,
)
from gateway.store.idempotency import IdempotencyQueries
from gateway.store.media import MediaQueries, MediaRow, PendingMedia, PendingMediaQueries
from gateway.store.messages import MessageQueries
from gateway.store.outbox import NewDelivery, OutboxQueries, enqueue_sync

__all__ = [
    "ContactRow",
    "Db",
    "DeviceRow",
    "MediaRow",
    "NewDelivery",
    "PendingMedia",
    "Store",
    "device_values",
    "enqueue_sync",
    "save_device_sync",
    "save_stats_sync",
    "stats_values",
    "upsert_contacts_sync",
]


class Store(
    DeviceQueries,
    ContactQueries,
    OutboxQueries,
    IdempotencyQueries,
    AccountQueries,
    MediaQueries,
    PendingMediaQueries,
    MessageQueries,
):
    def __init__(self, db: Db) -> None:
        self.db = db

    @classmethod
    async def open(cls, data_dir: Path) -> Store:
        return cls(await Db.open(data_dir / "gateway.db"))

    async def close(self) -> None:
        await self.db.close()

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self.db.transaction()

"""The store, ``gateway.db`` or PostgreSQL: the only code that speaks SQL.

:class:`Store` is the protocol the services use: the queries of each concept
(devices, contacts, the webhook outbox, idempotency, accounts, media,
messages, whatsmeow's sessions on PostgreSQL) and the hot path's units of
work (:mod:`gateway.store.events`), all over one :class:`~gateway.store.db.Db`. The engine is the Db's:
:class:`~gateway.store.db.SqliteDb` (one file under ``DATA_DIR``, the default)
or :class:`~gateway.store.postgres.PostgresDb` (``DATABASE_URL``); the queries
are the same SQL on both, and the same test suite runs on both
(``tests/store/``).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

from gateway.store.accounts import AccountQueries
from gateway.store.campaigns import CampaignQueries
from gateway.store.contacts import ContactQueries, ContactRow
from gateway.store.db import Db, SqliteDb
from gateway.store.devices import DeviceQueries, DeviceRow
from gateway.store.events import EventQueries
from gateway.store.idempotency import IdempotencyQueries
from gateway.store.leases import Fences, LeaseQueries
from gateway.store.media import MediaQueries, MediaRow, PendingMedia, PendingMediaQueries
from gateway.store.messages import MessageQueries
from gateway.store.outbox import NewDelivery, OutboxQueries
from gateway.store.whatsmeow import WHATSMEOW_LOCK_KEY, WhatsmeowQueries

__all__ = [
    "WHATSMEOW_LOCK_KEY",
    "ContactRow",
    "Db",
    "DeviceRow",
    "MediaRow",
    "NewDelivery",
    "PendingMedia",
    "Store",
]


class Store(
    DeviceQueries,
    EventQueries,
    ContactQueries,
    OutboxQueries,
    IdempotencyQueries,
    AccountQueries,
    MediaQueries,
    PendingMediaQueries,
    MessageQueries,
    CampaignQueries,
    LeaseQueries,
    WhatsmeowQueries,
):
    def __init__(self, db: Db) -> None:
        self.db = db
        self.fences: Fences | None = None  # cluster mode: the leases this node holds (set by gateway.cluster)

    @classmethod
    async def open(cls, data_dir: Path, database_url: str | None = None) -> Store:
        """PostgreSQL when ``database_url`` is given (its schema migrated first), else ``data_dir/gateway.db``."""
        if database_url:
            from gateway.store.postgres import PostgresDb

            return cls(await PostgresDb.open(database_url))
        return cls(await SqliteDb.open(data_dir / "gateway.db"))

    async def close(self) -> None:
        await self.db.close()

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self.db.transaction()

    async def identity(self) -> str:
        """What tells this database from any other, however a URL spells its address: on PostgreSQL the
        server's system identifier and the database's oid (nodes sharing them are one cluster)."""
        if self.db.engine != "postgres":
            return "sqlite"
        row = await self.db.fetchone(
            "SELECT system_identifier::text || '/' || (SELECT oid FROM pg_database"
            " WHERE datname = current_database())::text AS id FROM pg_control_system()"
        )
        assert row is not None
        return str(row["id"])

    async def writable(self) -> bool:
        """Whether a write would succeed now (the health check)."""
        return await self.db.writable()

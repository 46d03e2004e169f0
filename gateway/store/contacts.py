"""Contacts captured per device (from messages and history sync)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.store.db import Db


@dataclass(frozen=True, slots=True)
class ContactRow:
    phone: str
    name: str | None
    source: str
    first_seen: str
    last_seen: str

    def to_api(self) -> dict[str, Any]:
        return {
            "phone": self.phone,
            "name": self.name,
            "source": self.source,
            "firstSeen": self.first_seen,
            "lastSeen": self.last_seen,
        }


class ContactQueries:
    db: Db

    async def upsert_contacts(
        self, token: str, owner_id: int | None, contacts: Iterable[tuple[str, str | None]], source: str, seen: str
    ) -> list[ContactRow]:
        """Record contacts; return the ones that were new for this device.

        A known name is never replaced by a blank one; ``last_seen`` moves forward.
        Call inside a transaction to make it atomic with the event's outbox rows.
        """
        new: list[ContactRow] = []
        async with self.db.transaction():
            for phone, name in contacts:
                name = (name or "").strip() or None
                inserted = await self.db.execute(
                    "INSERT OR IGNORE INTO contacts (token, phone, name, source, first_seen, last_seen, owner_id)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (token, phone, name, source, seen, seen, owner_id),
                )
                if inserted:
                    new.append(ContactRow(phone, name, source, seen, seen))
                else:
                    await self.db.execute(
                        "UPDATE contacts SET name = COALESCE(?, name), last_seen = MAX(last_seen, ?)"
                        " WHERE token = ? AND phone = ?",
                        (name, seen, token, phone),
                    )
        return new

    async def count_contacts(self, token: str) -> int:
        row = await self.db.fetchone("SELECT COUNT(*) FROM contacts WHERE token = ?", (token,))
        return int(row[0]) if row else 0

    async def list_contacts(self, token: str, limit: int, offset: int) -> list[ContactRow]:
        rows = await self.db.fetchall(
            "SELECT phone, name, source, first_seen, last_seen FROM contacts WHERE token = ?"
            " ORDER BY first_seen, phone LIMIT ? OFFSET ?",
            (token, limit, offset),
        )
        return [ContactRow(*r) for r in rows]

    async def iter_contacts(self, token: str, limit: int, offset: int) -> AsyncIterator[list[ContactRow]]:
        """Batches of contacts in export order, holding one batch in memory."""
        async for batch in self.db.iterate(
            "SELECT phone, name, source, first_seen, last_seen FROM contacts WHERE token = ?"
            " ORDER BY first_seen, phone LIMIT ? OFFSET ?",
            (token, limit, offset),
        ):
            yield [ContactRow(*r) for r in batch]

    async def contact_owner(self, token: str) -> tuple[bool, int | None]:
        """Whether any contact exists for ``token``, and its owner."""
        row = await self.db.fetchone("SELECT owner_id FROM contacts WHERE token = ? LIMIT 1", (token,))
        return (row is not None, row[0] if row else None)

    async def delete_contacts(self, token: str) -> int:
        return await self.db.execute("DELETE FROM contacts WHERE token = ?", (token,))

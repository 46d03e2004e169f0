"""Contacts captured per device (from messages and history sync).

One row per (device token, phone). Rules of the upsert:

- ``first_seen`` and ``source`` are those of the first sighting: a history
  contact who later writes stays ``history`` (it was known first from there);
- ``last_seen`` only moves forward;
- a known name is never replaced by a blank one; a new non-blank name wins;
- rows carry the owning account; reads by an account see only its own rows,
  so a token reused by another account after a delete never shows the old
  owner's contacts (the new owner takes a row over when that phone reappears).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.store.conn import Conn
from gateway.store.db import Db

_COLUMNS = "phone, name, source, first_seen, last_seen"
_LOOKUP_CHUNK = 500  # SQLite allows 32,766 host parameters; stay well below
_NO_LIMIT = 2**62  # LIMIT for "every row" on both engines (SQLite's -1 is an error on PostgreSQL)

_UPSERT = """
INSERT INTO contacts (token, phone, name, source, first_seen, last_seen, owner_id) VALUES (?,?,?,?,?,?,?)
ON CONFLICT (token, phone) DO UPDATE SET
    name       = CASE WHEN contacts.owner_id IS excluded.owner_id THEN COALESCE(excluded.name, contacts.name)
                      ELSE excluded.name END,
    source     = CASE WHEN contacts.owner_id IS excluded.owner_id THEN contacts.source ELSE excluded.source END,
    first_seen = CASE WHEN contacts.owner_id IS excluded.owner_id THEN contacts.first_seen
                      ELSE excluded.first_seen END,
    last_seen  = CASE WHEN contacts.owner_id IS excluded.owner_id AND contacts.last_seen > excluded.last_seen
                      THEN contacts.last_seen ELSE excluded.last_seen END,
    owner_id   = excluded.owner_id
"""


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


def _owner_filter(owner_id: int | None) -> tuple[str, tuple[Any, ...]]:
    """SQL and args restricting rows to one account; ``None`` means every row (the admin)."""
    return ("", ()) if owner_id is None else (" AND owner_id = ?", (owner_id,))


def _merge(contacts: Iterable[tuple[str, str | None]]) -> dict[str, str | None]:
    """One entry per phone (a batch may repeat one), keeping the last non-blank name."""
    merged: dict[str, str | None] = {}
    for phone, raw in contacts:
        name = (raw or "").strip() or None
        if name is not None or phone not in merged:
            merged[phone] = name
    return merged


class ContactQueries:
    db: Db

    async def upsert_contacts(
        self, token: str, owner_id: int | None, contacts: Iterable[tuple[str, str | None]], source: str, seen: str
    ) -> list[ContactRow]:
        """Record contacts; return the ones that were new for this device (and this owner)."""
        batch = list(contacts)
        return await self.db.run(lambda conn: upsert_contacts_sync(conn, token, owner_id, batch, source, seen))

    async def count_contacts(self, token: str, owner_id: int | None = None) -> int:
        where, args = _owner_filter(owner_id)
        row = await self.db.fetchone(f"SELECT COUNT(*) FROM contacts WHERE token = ?{where}", (token, *args))
        return int(row[0]) if row else 0

    async def list_contacts(self, token: str, limit: int, offset: int, owner_id: int | None = None) -> list[ContactRow]:
        """One page in export order (``first_seen``, then phone)."""
        where, args = _owner_filter(owner_id)
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM contacts WHERE token = ?{where} ORDER BY first_seen, phone LIMIT ? OFFSET ?",
            (token, *args, limit, offset),
        )
        return [ContactRow(*r) for r in rows]

    async def iter_contacts(
        self, token: str, limit: int | None, offset: int, owner_id: int | None = None, batch: int = 1000
    ) -> AsyncIterator[list[ContactRow]]:
        """Batches of contacts in export order, holding one batch in memory; ``limit=None`` = every row."""
        async for rows in self.iter_contact_tuples(token, limit, offset, owner_id, batch):
            yield [ContactRow(*r) for r in rows]  # type: ignore[arg-type]  # NOT NULL columns but name

    async def iter_contact_tuples(
        self, token: str, limit: int | None, offset: int, owner_id: int | None = None, batch: int = 2000
    ) -> AsyncIterator[list[Sequence[str | None]]]:
        """Like :meth:`iter_contacts` but raw ``(phone, name, source, first_seen, last_seen)`` rows:
        the CSV export's hot path skips building objects."""
        where, args = _owner_filter(owner_id)
        async for rows in self.db.iterate(
            f"SELECT {_COLUMNS} FROM contacts WHERE token = ?{where} ORDER BY first_seen, phone LIMIT ? OFFSET ?",
            (token, *args, _NO_LIMIT if limit is None else limit, offset),
            batch=batch,
        ):
            yield rows

    async def has_contacts(self, token: str, owner_id: int | None = None) -> bool:
        """Whether ``token`` has any contact (of ``owner_id``; any owner when ``None``)."""
        where, args = _owner_filter(owner_id)
        row = await self.db.fetchone(f"SELECT 1 FROM contacts WHERE token = ?{where} LIMIT 1", (token, *args))
        return row is not None

    async def contact_owner(self, token: str) -> tuple[bool, int | None]:
        """Whether any contact exists for ``token``, and the owner of one of them."""
        row = await self.db.fetchone("SELECT owner_id FROM contacts WHERE token = ? LIMIT 1", (token,))
        return (row is not None, row[0] if row else None)

    async def delete_contacts(self, token: str) -> int:
        return await self.db.execute("DELETE FROM contacts WHERE token = ?", (token,))

    async def insert_contacts_bulk(self, token: str, owner_id: int | None, rows: Iterable[ContactRow]) -> None:
        """Load rows as they are (benchmarks, imports): no merge, no "new" detection."""
        await self.db.executemany(
            "INSERT OR REPLACE INTO contacts (token, phone, name, source, first_seen, last_seen, owner_id)"
            " VALUES (?,?,?,?,?,?,?)",
            ((token, r.phone, r.name, r.source, r.first_seen, r.last_seen, owner_id) for r in rows),
        )


def upsert_contacts_sync(
    conn: Conn,
    token: str,
    owner_id: int | None,
    contacts: Iterable[tuple[str, str | None]],
    source: str,
    seen: str,
) -> list[ContactRow]:
    """Record contacts on the writer's connection; return the ones new for this device (and owner).

    One lookup per 500 phones and one ``executemany``, so a history batch of
    thousands of contacts is a handful of statements. Runs inside a
    group-commit job, atomic with the event's other writes.
    """
    merged = _merge(contacts)
    if not merged:
        return []
    phones = list(merged)
    known: set[str] = set()
    for i in range(0, len(phones), _LOOKUP_CHUNK):
        chunk = phones[i : i + _LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        known.update(
            r[0]
            for r in conn.execute(
                f"SELECT phone FROM contacts WHERE token = ? AND owner_id IS ? AND phone IN ({marks})",
                (token, owner_id, *chunk),
            )
        )
    conn.executemany(_UPSERT, ((token, phone, name, source, seen, seen, owner_id) for phone, name in merged.items()))
    return [ContactRow(p, n, source, seen, seen) for p, n in merged.items() if p not in known]

"""whatsmeow's own tables, as far as the gateway must touch them (``DATABASE_URL`` only).

With PostgreSQL every device's whatsmeow session lives in the gateway's
database, in whatsmeow's tables (one shared schema, keyed by the device's
JID; every per-device table cascades from ``whatsmeow_device``). whatsmeow
owns them: it creates and upgrades them, and reads and writes the sessions.
The gateway only asks what Go cannot be asked safely:

- does a session for this JID exist? goneonize hands a JID that is not in the
  store to whatsmeow as a nil device, which panics and kills the process, so
  the driver asks here first;
- forget a session (a logout that could not reach WhatsApp leaves its row);
- the registry's JID of a device, which may have been recorded by another node;
- fence its tables (:meth:`WhatsmeowQueries.install_whatsmeow_fence`): a row trigger on every per-device
  table refuses a write from a node of the cluster that does not hold the device's lease (migration 11
  of :mod:`gateway.store.pg_schema` holds the function), so a node that lost a device cannot write its
  session even if its connection is still running.

The schema upgrade itself runs in Go, serialized by :meth:`Whatsmeow.exclusive`
(an advisory lock): whatsmeow's upgrade takes no lock of its own, and several
first upgrades at once fail. On SQLite (one session file per device, no shared
tables) there is nothing to ask: these answer as for an empty store.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

from gateway.store.db import Db

__all__ = ["FENCE_TRIGGER", "WHATSMEOW_LOCK_KEY", "WhatsmeowQueries", "fenced_columns"]

WHATSMEOW_LOCK_KEY = 0x7761_6777_6D65  # "wagwme": pg_advisory_lock's key for whatsmeow's schema upgrade
FENCE_TRIGGER = "gateway_fence"  # the trigger's name on each of whatsmeow's per-device tables
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")  # whatsmeow's names: written into the DDL as they are

# whatsmeow's tables and columns, and the foreign keys between them (referencing table, its columns,
# referenced table, its columns): what decides which column holds the device's JID in each table.
_TABLES_SQL = """
SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE ns.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname LIKE 'whatsmeow\\_%'
GROUP BY c.relname
"""
_FOREIGN_KEYS_SQL = """
SELECT t.relname,
       ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
       r.relname,
       ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
             JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i)
FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
JOIN pg_namespace ns ON ns.oid = t.relnamespace
WHERE k.contype = 'f' AND ns.nspname = current_schema() AND t.relname LIKE 'whatsmeow\\_%'
"""


def fenced_columns(
    tables: dict[str, list[str]], foreign_keys: list[tuple[str, list[str], str, list[str]]]
) -> dict[str, str]:
    """Which of whatsmeow's tables belong to one device, and the column naming it: table → column.

    ``whatsmeow_device`` by its ``jid``; a table with an ``our_jid`` column by that; and, transitively, a
    table whose foreign key points at a fenced table's JID column, by its own column in that key (the
    ``jid`` of ``whatsmeow_pre_keys``, ``whatsmeow_app_state_*``). Tables of no one device
    (``whatsmeow_version``, ``whatsmeow_lid_map``) are left out.
    """
    fenced: dict[str, str] = {}
    if "jid" in tables.get("whatsmeow_device", []):
        fenced["whatsmeow_device"] = "jid"
    fenced.update({t: "our_jid" for t, columns in tables.items() if "our_jid" in columns and t not in fenced})
    changed = True
    while changed:
        changed = False
        for table, columns, referenced, referenced_columns in foreign_keys:
            column = fenced.get(referenced)
            if table in fenced or table not in tables or column not in referenced_columns:
                continue
            fenced[table] = columns[referenced_columns.index(column)]
            changed = True
    return fenced


class WhatsmeowQueries:
    db: Db

    async def whatsmeow_session_exists(self, jid: str) -> bool:
        """Whether whatsmeow's store holds the device ``jid`` (``user:device@server``)."""
        if self.db.engine != "postgres" or not await self._whatsmeow_ready():
            return False
        return await self.db.fetchone("SELECT 1 FROM whatsmeow_device WHERE jid = ?", (jid,)) is not None

    async def delete_whatsmeow_session(self, jid: str) -> bool:
        """Remove the device ``jid`` and, by whatsmeow's cascades, every row of its session."""
        if self.db.engine != "postgres" or not await self._whatsmeow_ready():
            return False
        return await self.db.execute("DELETE FROM whatsmeow_device WHERE jid = ?", (jid,)) > 0

    async def device_jid(self, token: str) -> str | None:
        """The JID the registry holds for ``token`` (recorded by whichever node saw it connect)."""
        row = await self.db.fetchone("SELECT jid FROM devices WHERE token = ?", (token,))
        return row[0] if row is not None else None

    async def server_version(self) -> int | None:
        """PostgreSQL's ``server_version_num`` (150004 for 15.4); None on SQLite."""
        if self.db.engine != "postgres":
            return None
        row = await self.db.fetchone("SELECT current_setting('server_version_num')::int")
        return int(row[0]) if row else None

    async def install_whatsmeow_fence(self) -> list[str]:
        """Put the fence trigger on each per-device table of whatsmeow that lacks it; every fenced table.

        Run after whatsmeow's schema upgrade (which creates the tables, and may add some in a new
        version), under its advisory lock; idempotent. Nothing on SQLite (a session file per device).
        """
        if self.db.engine != "postgres" or not await self._whatsmeow_ready():
            return []
        tables = {r[0]: list(r[1]) for r in await self.db.direct(_TABLES_SQL)}
        keys = [(r[0], list(r[1]), r[2], list(r[3])) for r in await self.db.direct(_FOREIGN_KEYS_SQL)]
        fenced = fenced_columns(tables, keys)
        rows = await self.db.direct(
            "SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid"
            " JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE g.tgname = $1 AND ns.nspname = current_schema()",
            FENCE_TRIGGER,
        )
        present = {r[0] for r in rows}
        for table, column in sorted(fenced.items()):
            if table in present or not (_IDENTIFIER.fullmatch(table) and _IDENTIFIER.fullmatch(column)):
                continue
            await self.db.direct(  # WHEN: a session of no node (import, an operator) never enters PL/pgSQL
                f'CREATE TRIGGER {FENCE_TRIGGER} BEFORE INSERT OR UPDATE OR DELETE ON "{table}" FOR EACH ROW'
                f" WHEN (current_setting('application_name') LIKE 'whatsmeow %')"
                f" EXECUTE FUNCTION gateway_whatsmeow_fence('{column}')"
            )
        return sorted(fenced)

    async def _whatsmeow_ready(self) -> bool:
        row = await self.db.fetchone("SELECT to_regclass('whatsmeow_device') IS NOT NULL")
        return bool(row and row[0])

    @contextlib.asynccontextmanager
    async def exclusive(self, key: int) -> AsyncIterator[None]:
        """Hold PostgreSQL's session advisory lock ``key`` (every node's holder waits its turn).

        On SQLite there is one process per data directory: nothing to hold.
        """
        async with self.db.advisory_lock(key):
            yield

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
- the registry's JID of a device, which may have been recorded by another node.

The schema upgrade itself runs in Go, serialized by :meth:`Whatsmeow.exclusive`
(an advisory lock): whatsmeow's upgrade takes no lock of its own, and several
first upgrades at once fail. On SQLite (one session file per device, no shared
tables) there is nothing to ask: these answer as for an empty store.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from gateway.store.db import Db

__all__ = ["WHATSMEOW_LOCK_KEY", "WhatsmeowQueries"]

WHATSMEOW_LOCK_KEY = 0x7761_6777_6D65  # "wagwme": pg_advisory_lock's key for whatsmeow's schema upgrade


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

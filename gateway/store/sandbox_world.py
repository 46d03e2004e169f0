"""The sandbox driver's simulated WhatsApp, shared by every node of a cluster (PostgreSQL only).

On one node the sandbox keeps pairing in ``<token>.db`` and knows its own connections. In a cluster a
device moves between nodes, so its pairing lives here (``sandbox_sessions``), and every connection the
simulated WhatsApp sees is a row of ``sandbox_connections``: so a device connected twice at once — the
thing leases exist to prevent — is visible, and tests assert it never happens rather than assume it.

Each row carries the PostgreSQL backend of this node's own connection to the database, which lives as
long as the node's process: when another node connects the device, an open row whose backend is gone
belonged to a process that died (``kill -9``: its WhatsApp socket died with it) and is closed as
``gone``; one whose backend is alive is a live double connection — the newcomer replaces it (as
WhatsApp does) and the new row records ``overlapped``.

Implements :class:`gateway.drivers.base.SandboxWorld` (structurally: the store does not import drivers).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger("gateway.store")


class SandboxWorldStore:
    """One node's view of the simulated WhatsApp: a connection of its own, writes in the order made."""

    def __init__(self, url: str, node: str) -> None:
        self.url = url
        self.node = node
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # FIFO: writes reach the database in the order the driver made them
        self._paired: set[str] = set()
        self._open: dict[str, int] = {}  # token → its open connection row
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.url)
        rows = await self._conn.fetch("SELECT token FROM sandbox_sessions")
        self._paired = {r[0] for r in rows}

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)

    async def _do(self, what: str, fn: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self.url)
            try:
                return await fn(self._conn)
            except Exception as exc:
                log.warning("sandbox_world.write_failed", what=what, error=repr(exc))
                return None

    def _later(self, what: str, fn: Callable[[asyncpg.Connection], Awaitable[Any]]) -> None:
        task = asyncio.get_running_loop().create_task(self._do(what, fn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- pairing -------------------------------------------------------------------------------

    def is_paired(self, token: str) -> bool:
        return token in self._paired

    async def refresh(self, token: str) -> None:
        """Read ``token``'s pairing again (it may have been paired on another node)."""
        row = await self._do("refresh", lambda c: c.fetchrow("SELECT 1 FROM sandbox_sessions WHERE token = $1", token))
        if row is not None:
            self._paired.add(token)
        else:
            self._paired.discard(token)

    def set_paired(self, token: str, paired: bool) -> None:
        if paired:
            self._paired.add(token)
            sql = "INSERT INTO sandbox_sessions (token) VALUES ($1) ON CONFLICT (token) DO UPDATE SET paired_at = now()"
        else:
            self._paired.discard(token)
            sql = "DELETE FROM sandbox_sessions WHERE token = $1"
        self._later("pairing", lambda c: c.execute(sql, token))

    # --- connections ---------------------------------------------------------------------------

    def opened(self, token: str) -> None:
        """A connection of ``token`` came up on this node."""

        async def write(c: asyncpg.Connection) -> None:
            async with c.transaction():
                await c.execute("SELECT pg_advisory_xact_lock(hashtext($1))", token)
                await c.execute(
                    "UPDATE sandbox_connections SET closed_at = now(), closed_why = 'gone' WHERE token = $1"
                    " AND closed_at IS NULL AND backend_pid NOT IN (SELECT pid FROM pg_stat_activity)",
                    token,
                )
                row = await c.fetchrow(
                    "WITH prev AS (UPDATE sandbox_connections SET closed_at = now(), closed_why ="
                    " CASE WHEN backend_pid = pg_backend_pid() THEN 'reopened' ELSE 'replaced' END"
                    " WHERE token = $1 AND closed_at IS NULL RETURNING closed_why)"
                    " INSERT INTO sandbox_connections (token, node, backend_pid, overlapped)"
                    " SELECT $1, $2, pg_backend_pid(), (SELECT count(*) FROM prev WHERE closed_why = 'replaced')"
                    " RETURNING id, overlapped",
                    token,
                    self.node,
                )
            self._open[token] = int(row[0])
            if row[1]:
                log.error("sandbox_world.connected_twice", token=token, node=self.node)

        self._later("opened", write)

    def closed(self, token: str, why: str) -> None:
        """This node's connection of ``token`` went down (``why``: disconnect, drop, logout, …)."""

        async def write(c: asyncpg.Connection) -> None:
            row_id = self._open.pop(token, None)
            if row_id is not None:
                await c.execute(
                    "UPDATE sandbox_connections SET closed_at = now(), closed_why = $2 WHERE id = $1"
                    " AND closed_at IS NULL",
                    row_id,
                    why,
                )

        self._later("closed", write)

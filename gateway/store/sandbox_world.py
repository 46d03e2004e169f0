"""The sandbox driver's simulated WhatsApp, shared by every node of a cluster (PostgreSQL only).

On one node the sandbox keeps pairing in ``<token>.db``, what each device sent in ``<token>.db-sent.jsonl``,
and knows its own connections. In a cluster a device moves between nodes, so its pairing lives here
(``sandbox_sessions``), so does what it sent (``sandbox_sent``: ``GET /sandbox/devices/{token}/sent`` shows
everything whichever node sent it), and every connection the simulated WhatsApp sees is a row of
``sandbox_connections``: so a device connected twice at once — the thing leases exist to prevent — is
visible, and tests assert it never happens rather than assume it.

What devices send is written as the single node writes its files: the records of one turn of the event
loop, every device's, in one statement at its end (an edit keeps its record's place: ``seq`` is drawn
once); each device keeps its newest ``sent_kept``, older rows deleted once it has twice that many.

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
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import structlog

log = structlog.get_logger("gateway.store")

DRAIN_TIMEOUT_S = 2.0

# id, to, text, when, the rest of the record (gateway.drivers.base.SentRecord)
Sent = tuple[str, str, str | None, datetime, dict[str, Any] | None]

_WRITE_SENT = (
    "INSERT INTO sandbox_sent (token, id, to_jid, text, at, record)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::text[])"
    " ON CONFLICT (token, id) DO UPDATE SET to_jid = EXCLUDED.to_jid, text = EXCLUDED.text, at = EXCLUDED.at,"
    " record = EXCLUDED.record"
)
_TRIM_SENT = (
    "DELETE FROM sandbox_sent s USING unnest($1::text[]) AS t(token)"
    " WHERE s.token = t.token AND s.seq < (SELECT k.seq FROM sandbox_sent k WHERE k.token = t.token"
    " ORDER BY k.seq DESC OFFSET $2 - 1 LIMIT 1)"
)


class SandboxWorldStore:
    """One node's view of the simulated WhatsApp: a connection of its own, writes in the order made."""

    def __init__(self, url: str, node: str, sent_kept: int = 1000) -> None:
        self.url = url
        self.node = node
        self.sent_kept = sent_kept
        self._sent: dict[str, list[Sent]] = {}  # token → what it sent, as refresh read it
        self._sent_rows: dict[str, int] = {}  # token → rows it has in sandbox_sent, as far as this node knows
        self._sent_batch: list[tuple[str, Sent]] = []  # this turn of the loop's records, every device's
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
        self._flush_sent()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=DRAIN_TIMEOUT_S)
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
        """Read ``token``'s pairing and what it sent again (it may have been paired, and sent, on another node)."""

        async def read(c: asyncpg.Connection) -> tuple[bool, list[Any], int]:
            paired = await c.fetchrow("SELECT 1 FROM sandbox_sessions WHERE token = $1", token)
            rows = await c.fetch(
                "SELECT id, to_jid, text, at, record, count(*) OVER () FROM sandbox_sent WHERE token = $1"
                " ORDER BY seq DESC LIMIT $2",
                token,
                self.sent_kept,
            )
            return paired is not None, list(rows), int(rows[0][5]) if rows else 0

        answer = await self._do("refresh", read)
        if answer is None:  # the database is away: the device starts from what this node knew
            return
        paired, rows, count = answer
        if paired:
            self._paired.add(token)
        else:
            self._paired.discard(token)
        self._sent[token] = [
            (r[0], r[1], r[2], datetime.fromtimestamp(r[3], UTC), orjson.loads(r[4]) if r[4] is not None else None)
            for r in reversed(rows)
        ]
        self._sent_rows[token] = count

    def set_paired(self, token: str, paired: bool) -> None:
        if paired:
            self._paired.add(token)
            sql = "INSERT INTO sandbox_sessions (token) VALUES ($1) ON CONFLICT (token) DO UPDATE SET paired_at = now()"
        else:
            self._paired.discard(token)
            sql = "DELETE FROM sandbox_sessions WHERE token = $1"
        self._later("pairing", lambda c: c.execute(sql, token))

    # --- what devices sent ---------------------------------------------------------------------

    def sent_records(self, token: str) -> list[Sent]:
        return self._sent.pop(token, [])

    def record_sent(self, token: str, records: list[Sent]) -> None:
        if not self._sent_batch:
            asyncio.get_running_loop().call_soon(self._flush_sent)
        self._sent_batch.extend((token, r) for r in records)

    def forget_sent(self, token: str) -> None:
        self._sent_batch = [(t, r) for t, r in self._sent_batch if t != token]  # nothing of it is written after
        self._sent.pop(token, None)
        self._sent_rows.pop(token, None)
        self._later("sent", lambda c: c.execute("DELETE FROM sandbox_sent WHERE token = $1", token))

    async def drain(self) -> None:
        """Wait for the writes made so far — at most ``DRAIN_TIMEOUT_S``: with the database away, a device
        being stopped must not wait for it (what it sent is then lost with the write, as by a kill)."""
        self._flush_sent()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=DRAIN_TIMEOUT_S)

    def _flush_sent(self) -> None:
        """The turn's records, every device's, in one statement (an id written twice in it: the last record,
        once — a row may be changed once per statement); then the devices past twice their keep trimmed."""
        batch, self._sent_batch = self._sent_batch, []
        if not batch:
            return
        last: dict[tuple[str, str], Sent] = {}
        for token, sent in batch:
            last[(token, sent[0])] = sent
        rows = [
            (token, msg_id, to, text, at.timestamp(), orjson.dumps(record).decode() if record else None)
            for (token, _), (msg_id, to, text, at, record) in last.items()
        ]
        columns = [list(column) for column in zip(*rows, strict=True)]
        trim: list[str] = []
        for token, written in Counter(t for t, _ in last).items():
            kept = self._sent_rows.get(token, 0) + written  # an edit counts too: trimmed a little early
            if kept > 2 * self.sent_kept:
                trim.append(token)
                kept = self.sent_kept
            self._sent_rows[token] = kept

        async def write(c: asyncpg.Connection) -> None:
            async with c.transaction():
                await c.execute(_WRITE_SENT, *columns)
                if trim:
                    await c.execute(_TRIM_SENT, trim, self.sent_kept)

        self._later("sent", write)

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

"""The webhook outbox: one row per (event, target URL), written in the
transaction of the state change it reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.store.conn import Conn
from gateway.store.db import Db


@dataclass(frozen=True, slots=True)
class NewDelivery:
    webhook_id: str
    event: str
    token: str | None
    owner_id: int | None
    url: str
    body: bytes
    check_private: bool
    created_at: float
    target: str = "operator"  # operator | device | account (gateway.webhooks.keys): who signs, who sees


class OutboxQueries:
    db: Db

    async def enqueue(self, deliveries: Iterable[NewDelivery]) -> int:
        """Insert pending deliveries, due now. Returns how many."""
        rows = list(deliveries)
        return await self.db.run(lambda conn: enqueue_sync(conn, rows)) if rows else 0

    async def outbox_stats(self) -> tuple[dict[str, int], float | None]:
        """For metrics: deliveries by status, and ``created_at`` of the oldest pending one (None if none)."""
        rows = await self.db.fetchall("SELECT status, COUNT(*), MIN(created_at) FROM outbox GROUP BY status")
        counts = {str(r[0]): int(r[1]) for r in rows}
        oldest = next((float(r[2]) for r in rows if r[0] == "pending"), None)
        return counts, oldest

    async def sync_outbox(self, results: list[AttemptResult], after_id: int, limit: int) -> list[OutboxRow]:
        """The dispatcher's pass as one job on the writer (one thread hop, group-committed, never a
        stale read): store ``results``, then return pending rows with ``id > after_id`` (oldest first)."""
        return await self.db.run(lambda conn: sync_outbox_sync(conn, results, after_id, limit))

    async def deliveries_by_id(self, ids: list[int]) -> list[OutboxRow]:
        """Rows by id, read on the writer (a row just claimed must be visible)."""
        sql = f"SELECT {_COLUMNS} FROM outbox WHERE id IN ({','.join('?' * len(ids))}) ORDER BY id"
        return await self.db.run(lambda conn: [_row(r) for r in conn.execute(sql, ids).fetchall()])

    async def claim_deliveries(self, holder: str, now: float, until: float, limit: int) -> list[OutboxRow]:
        """Take up to ``limit`` due pending deliveries, oldest first, for ``holder`` until ``until``:
        rows nobody holds or whose claim ran out. On PostgreSQL rows another node is claiming at the
        same moment are skipped (``FOR UPDATE SKIP LOCKED``), so no row is ever taken twice; SQLite
        has one writer, which serializes claims by itself. An attempt's result ends the claim."""
        lock = " FOR UPDATE SKIP LOCKED" if self.db.engine == "postgres" else ""
        sql = (
            "UPDATE outbox SET claimed_by = ?, claim_until = ? WHERE id IN (SELECT id FROM outbox"
            " WHERE status = 'pending' AND next_attempt_at <= ? AND (claim_until IS NULL OR claim_until <= ?)"
            f" ORDER BY id LIMIT ?{lock}) RETURNING {_COLUMNS}"
        )
        rows = await self.db.run(lambda conn: conn.execute(sql, (holder, until, now, now, limit)).fetchall())
        return sorted((_row(r) for r in rows), key=lambda r: r.id)

    async def release_claimed(self, holder: str, ids: list[int]) -> int:
        """Give back deliveries ``holder`` claimed but will not attempt now (their lane was full)."""
        if not ids:
            return 0
        return await self.db.execute(
            f"UPDATE outbox SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ? AND id IN"
            f" ({','.join('?' * len(ids))}) AND status = 'pending'",
            (holder, *ids),
        )

    async def release_claims(self, holder: str) -> int:
        """Give back every delivery ``holder`` still holds (it stopped, or lost its lease)."""
        return await self.db.execute(
            "UPDATE outbox SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ? AND status = 'pending'",
            (holder,),
        )

    async def record_attempts(self, results: list[AttemptResult]) -> None:
        """Store the outcome of finished attempts, all in one transaction."""
        if results:
            await self.db.run(lambda conn: record_attempts_sync(conn, results))

    async def list_deliveries(
        self, owner_id: int | None, status: str | None, token: str | None, limit: int, before: int | None = None
    ) -> list[OutboxRow]:
        """Newest first. ``owner_id`` None = every row (the admin), else only that account's rows to its
        own targets (its devices' and its own URL; never the operator's ``WEBHOOK_URL``)."""
        clauses: list[str] = ["1=1"] if owner_id is None else ["target IN ('device','account')"]
        args: list[Any] = []
        for sql, value in (
            ("owner_id = ?", owner_id),
            ("status = ?", status),
            ("token = ?", token),
            ("id < ?", before),
        ):
            if value is not None:
                clauses.append(sql)
                args.append(value)
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM outbox WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?", (*args, limit)
        )
        return [_row(r) for r in rows]

    async def get_delivery(self, delivery_id: int) -> OutboxRow | None:
        row = await self.db.fetchone(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (delivery_id,))
        return None if row is None else _row(row)

    async def requeue_failed(self, delivery_id: int, now: float) -> bool:
        """Put a ``failed`` delivery back in the queue, due now, with attempts 0."""
        changed = await self.db.execute(
            "UPDATE outbox SET status='pending', attempts=0, next_attempt_at=? WHERE id=? AND status='failed'",
            (now, delivery_id),
        )
        return changed > 0

    async def classify_deliveries(self, operator_url: str | None) -> int:
        """Give rows written before targets were recorded one: the operator's when they go to
        ``operator_url`` (``WEBHOOK_URL``), else their account's (or, with no account, the device's)."""
        return await self.db.execute(
            "UPDATE outbox SET target = CASE WHEN url = ? THEN 'operator'"
            " WHEN owner_id IS NULL THEN 'device' ELSE 'account' END WHERE target IS NULL",
            (operator_url or "",),
        )

    async def prune_delivered(self, before: float) -> int:
        """Delete delivered rows older than ``before`` (pending and failed rows are kept)."""
        return await self.db.execute("DELETE FROM outbox WHERE status='delivered' AND delivered_at < ?", (before,))


_COLUMNS = (
    "id, webhook_id, event, token, owner_id, url, check_private, body, status, attempts, last_error,"
    " next_attempt_at, created_at, delivered_at, target"
)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    webhook_id: str
    event: str
    token: str | None
    owner_id: int | None
    url: str
    check_private: bool
    body: bytes
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: float
    created_at: float
    delivered_at: float | None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """The row's state after one attempt."""

    id: int
    status: str  # pending (to retry) | delivered | failed
    attempts: int
    last_error: str | None
    next_attempt_at: float
    delivered_at: float | None


def _row(r: Any) -> OutboxRow:
    return OutboxRow(
        id=r[0],
        webhook_id=r[1],
        event=r[2],
        token=r[3],
        owner_id=r[4],
        url=r[5],
        check_private=bool(r[6]),
        body=bytes(r[7]),
        status=r[8],
        attempts=r[9],
        last_error=r[10],
        next_attempt_at=r[11],
        created_at=r[12],
        delivered_at=r[13],
        target=r[14],
    )


def enqueue_sync(conn: Conn, deliveries: Iterable[NewDelivery]) -> int:
    """Insert pending deliveries, due now, on the writer's connection (inside a group-commit job)."""
    rows = [
        (
            d.webhook_id,
            d.event,
            d.token,
            d.owner_id,
            d.url,
            int(d.check_private),
            d.body,
            d.created_at,
            d.created_at,
            d.target,
        )
        for d in deliveries
    ]
    if rows:
        conn.executemany(
            "INSERT INTO outbox (webhook_id, event, token, owner_id, url, check_private, body,"
            " next_attempt_at, created_at, target) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    return len(rows)


def record_attempts_sync(conn: Conn, results: Iterable[AttemptResult]) -> None:
    conn.executemany(
        "UPDATE outbox SET status=?, attempts=?, last_error=?, next_attempt_at=?, delivered_at=?,"
        " claimed_by=NULL, claim_until=NULL WHERE id=? AND status='pending'",
        [(r.status, r.attempts, r.last_error, r.next_attempt_at, r.delivered_at, r.id) for r in results],
    )


def sync_outbox_sync(conn: Conn, results: list[AttemptResult], after_id: int, limit: int) -> list[OutboxRow]:
    """See :meth:`OutboxQueries.sync_outbox`."""
    if results:
        record_attempts_sync(conn, results)
    # ``+status``: walk the rowid range after ``after_id`` (new rows, nearly all pending). Left to
    # itself SQLite takes outbox_due (status = ?) and sorts every pending row on each pass: with a
    # backlog of 20,000 that was 40 % of the dispatcher's CPU.
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE id > ? AND +status = 'pending' ORDER BY id LIMIT ?", (after_id, limit)
    )
    return [_row(r) for r in cur.fetchall()]

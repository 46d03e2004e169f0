"""The webhook outbox: one row per (event, target URL), written in the
transaction of the state change it reports."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

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


class OutboxQueries:
    db: Db

    async def enqueue(self, deliveries: Iterable[NewDelivery]) -> int:
        """Insert pending deliveries, due now. Returns how many."""
        rows = [
            (d.webhook_id, d.event, d.token, d.owner_id, d.url, int(d.check_private), d.body, d.created_at, d.created_at)
            for d in deliveries
        ]
        if rows:
            await self.db.executemany(
                "INSERT INTO outbox (webhook_id, event, token, owner_id, url, check_private, body,"
                " next_attempt_at, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                rows,
            )
        return len(rows)

    async def outbox_stats(self) -> tuple[dict[str, int], float | None]:
        """For metrics: deliveries by status, and ``created_at`` of the oldest pending one (None if none)."""
        rows = await self.db.fetchall("SELECT status, COUNT(*), MIN(created_at) FROM outbox GROUP BY status")
        counts = {str(r[0]): int(r[1]) for r in rows}
        oldest = next((float(r[2]) for r in rows if r[0] == "pending"), None)
        return counts, oldest

    async def due_deliveries(
        self, now: float, limit: int, skip_ids: Collection[int] = (), skip_urls: Collection[str] = ()
    ) -> list[OutboxRow]:
        """Pending rows due by ``now``, oldest due first, leaving out rows already claimed
        and URLs already at their concurrency limit (so one busy receiver cannot fill the batch)."""
        where, args = _pending_filter(skip_ids, skip_urls)
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM outbox WHERE {where} AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (*args, now, limit),
        )
        return [_row(r) for r in rows]

    async def next_attempt_at(self, skip_ids: Collection[int] = (), skip_urls: Collection[str] = ()) -> float | None:
        """When the earliest pending row (same exclusions as :meth:`due_deliveries`) is due."""
        where, args = _pending_filter(skip_ids, skip_urls)
        row = await self.db.fetchone(f"SELECT MIN(next_attempt_at) FROM outbox WHERE {where}", args)
        return None if row is None or row[0] is None else float(row[0])

    async def record_attempts(self, results: Iterable[AttemptResult]) -> None:
        """Store the outcome of finished attempts, all in one transaction."""
        rows = [(r.status, r.attempts, r.last_error, r.next_attempt_at, r.delivered_at, r.id) for r in results]
        if rows:
            await self.db.executemany(
                "UPDATE outbox SET status=?, attempts=?, last_error=?, next_attempt_at=?, delivered_at=?"
                " WHERE id=? AND status='pending'",
                rows,
            )

    async def list_deliveries(
        self, owner_id: int | None, status: str | None, token: str | None, limit: int, before: int | None = None
    ) -> list[OutboxRow]:
        """Newest first. ``owner_id`` None = every row (the admin), else only that account's."""
        clauses, args = ["1=1"], []
        for sql, value in (("owner_id = ?", owner_id), ("status = ?", status), ("token = ?", token), ("id < ?", before)):
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

    async def prune_delivered(self, before: float) -> int:
        """Delete delivered rows older than ``before`` (pending and failed rows are kept)."""
        return await self.db.execute("DELETE FROM outbox WHERE status='delivered' AND delivered_at < ?", (before,))


_COLUMNS = (
    "id, webhook_id, event, token, owner_id, url, check_private, body, status, attempts, last_error,"
    " next_attempt_at, created_at, delivered_at"
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
    )


def _pending_filter(skip_ids: Collection[int], skip_urls: Collection[str]) -> tuple[str, tuple[Any, ...]]:
    where = "status = 'pending'"
    if skip_ids:
        where += f" AND id NOT IN ({','.join('?' * len(skip_ids))})"
    if skip_urls:
        where += f" AND url NOT IN ({','.join('?' * len(skip_urls))})"
    return where, (*skip_ids, *skip_urls)

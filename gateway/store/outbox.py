"""The webhook outbox: one row per (event, target URL), written in the
transaction of the state change it reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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

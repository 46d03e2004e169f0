"""Idempotency keys of ``POST /messages``: the first successful response per (caller, key).

While the first call runs, its row is a *claim* (``response`` is :data:`CLAIM`, ``created_at`` when it
was taken): a repeat on any node sharing the store sees it and waits. A claim older than its holder's
longest call is stale (its node died) and may be taken over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.store.db import Db

CLAIM = "#claim"  # the response of a row whose first call is still running (never valid JSON)


@dataclass(frozen=True, slots=True)
class IdempotentResponse:
    body_hash: str
    data: Any
    created_at: float  # unix seconds
    pending: bool = False  # a claim: the first call has not finished


class IdempotencyQueries:
    db: Db

    async def get_idempotent(self, scope: str, key: str) -> IdempotentResponse | None:
        row = await self.db.fetchone(
            "SELECT body_hash, response, created_at FROM idempotency WHERE scope = ? AND key = ?", (scope, key)
        )
        if not row:
            return None
        if row[1] == CLAIM:
            return IdempotentResponse(row[0], None, float(row[2]), pending=True)
        return IdempotentResponse(row[0], orjson.loads(row[1]), float(row[2]))

    async def claim_idempotent(
        self, scope: str, key: str, body_hash: str, now: float, expired_before: float, stale_before: float
    ) -> bool:
        """Take the key for a first call: True if this caller holds it now. An expired response
        (stored before ``expired_before``) or a stale claim (taken before ``stale_before``) gives way."""
        async with self.db.transaction():
            await self.db.execute(
                "DELETE FROM idempotency WHERE scope = ? AND key = ?"
                " AND (created_at < ? OR (response = ? AND created_at < ?))",
                (scope, key, expired_before, CLAIM, stale_before),
            )
            taken = await self.db.execute(
                "INSERT OR IGNORE INTO idempotency (scope, key, body_hash, response, created_at) VALUES (?,?,?,?,?)",
                (scope, key, body_hash, CLAIM, now),
            )
        return taken > 0

    async def release_idempotent(self, scope: str, key: str) -> None:
        """The first call failed: its claim goes, so a retry under the same key runs again."""
        await self.db.execute(
            "DELETE FROM idempotency WHERE scope = ? AND key = ? AND response = ?", (scope, key, CLAIM)
        )

    async def save_idempotent(self, scope: str, key: str, body_hash: str, data: Any, now: float) -> None:
        """Remember a successful response (replacing the claim, or an expired one, under the same key)."""
        await self.db.execute(
            "INSERT OR REPLACE INTO idempotency (scope, key, body_hash, response, created_at) VALUES (?,?,?,?,?)",
            (scope, key, body_hash, orjson.dumps(data).decode(), now),
        )

    async def prune_idempotency(self, before: float) -> int:
        """Forget responses stored before ``before`` (unix seconds); returns how many."""
        return await self.db.execute("DELETE FROM idempotency WHERE created_at < ?", (before,))

"""Idempotency keys of ``POST /messages``: the first successful response per (caller, key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.store.db import Db


@dataclass(frozen=True, slots=True)
class IdempotentResponse:
    body_hash: str
    data: Any
    created_at: float  # unix seconds


class IdempotencyQueries:
    db: Db

    async def get_idempotent(self, scope: str, key: str) -> IdempotentResponse | None:
        row = await self.db.fetchone(
            "SELECT body_hash, response, created_at FROM idempotency WHERE scope = ? AND key = ?", (scope, key)
        )
        return IdempotentResponse(row[0], orjson.loads(row[1]), float(row[2])) if row else None

    async def save_idempotent(self, scope: str, key: str, body_hash: str, data: Any, now: float) -> None:
        """Remember a successful response (replacing an expired one under the same key)."""
        await self.db.execute(
            "INSERT OR REPLACE INTO idempotency (scope, key, body_hash, response, created_at) VALUES (?,?,?,?,?)",
            (scope, key, body_hash, orjson.dumps(data).decode(), now),
        )

    async def prune_idempotency(self, before: float) -> int:
        """Forget responses stored before ``before`` (unix seconds); returns how many."""
        return await self.db.execute("DELETE FROM idempotency WHERE created_at < ?", (before,))

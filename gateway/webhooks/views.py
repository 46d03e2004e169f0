"""Deliveries as the HTTP API shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.store.outbox import OutboxRow
from gateway.timestamps import iso


def _iso_ts(ts: float | None) -> str | None:
    return None if ts is None else iso(datetime.fromtimestamp(ts, UTC))


def delivery_view(row: OutboxRow) -> dict[str, Any]:
    """A delivery as ``GET /webhooks/deliveries`` shows it."""
    return {
        "id": row.id,
        "event": row.event,
        "token": row.token,
        "url": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "lastError": row.last_error,
        "nextAttemptAt": _iso_ts(row.next_attempt_at) if row.status == "pending" else None,
        "createdAt": _iso_ts(row.created_at),
        "deliveredAt": _iso_ts(row.delivered_at),
    }

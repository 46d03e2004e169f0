"""A campaign's recipients as CSV, streamed batch by batch (memory stays at one batch).

Header ``phone,name,status,reason,message_id,sent_at,status_at``; names and
reasons come from outside (a CSV upload, push names) and are neutralised
against spreadsheet formulas as in :mod:`gateway.csv_export`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from gateway.csv_export import render_rows
from gateway.timestamps import iso

HEADER = ("phone", "name", "status", "reason", "message_id", "sent_at", "status_at")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso(datetime.fromtimestamp(ts, UTC))


async def recipients_csv(batches: AsyncIterator[list[Any]]) -> AsyncIterator[bytes]:
    yield render_rows([HEADER]).encode()
    async for batch in batches:
        yield render_rows(
            (r[0], r[1], "pending" if r[2] == "sending" else r[2], r[3], r[4], _iso(r[5]), _iso(r[6])) for r in batch
        ).encode()

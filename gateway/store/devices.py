"""Device rows: the device state that survives restarts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gateway.store.conn import Conn
from gateway.store.db import Db


@dataclass(slots=True)
class DeviceRow:
    token: str
    status: str
    created_at: str
    last_update: str
    owner_id: int | None = None
    name: str | None = None
    method: str = "qr"
    reconnecting: bool = False
    webhook_url: str | None = None
    webhook_events: list[str] | None = None
    pushname: str | None = None
    platform: str | None = None
    phone: str | None = None
    messages_sent: int = 0
    messages_received: int = 0
    connected_at: str | None = None
    webhook_secret: str | None = None  # signs deliveries to this device's own URL; never shown by the API
    jid: str | None = None  # the linked WhatsApp device (user:device@server): selects its session on PostgreSQL
    extra: dict[str, Any] = field(default_factory=dict)


_COLUMNS = (
    "token, owner_id, name, method, status, reconnecting, webhook_url, webhook_events, pushname, "
    "platform, phone, messages_sent, messages_received, created_at, connected_at, last_update, webhook_secret, jid"
)

_INSERT = f"INSERT OR REPLACE INTO devices ({_COLUMNS}) VALUES ({','.join('?' * (_COLUMNS.count(',') + 1))})"


def _row(r: Any) -> DeviceRow:
    events = r["webhook_events"]
    return DeviceRow(
        token=r["token"],
        owner_id=r["owner_id"],
        name=r["name"],
        method=r["method"],
        status=r["status"],
        reconnecting=bool(r["reconnecting"]),
        webhook_url=r["webhook_url"],
        webhook_events=json.loads(events) if events else None,
        pushname=r["pushname"],
        platform=r["platform"],
        phone=r["phone"],
        messages_sent=r["messages_sent"],
        messages_received=r["messages_received"],
        created_at=r["created_at"],
        connected_at=r["connected_at"],
        last_update=r["last_update"],
        webhook_secret=r["webhook_secret"],
        jid=r["jid"],
    )


class DeviceQueries:
    db: Db

    async def all_devices(self) -> list[DeviceRow]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM devices ORDER BY created_at, token")
        return [_row(r) for r in rows]

    async def get_device(self, token: str) -> DeviceRow | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM devices WHERE token = ?", (token,))
        return _row(r) if r else None

    async def delete_device(self, token: str) -> None:
        await self.db.execute("DELETE FROM devices WHERE token = ?", (token,))


def device_values(d: DeviceRow) -> tuple[Any, ...]:
    """The row's column values, in ``_COLUMNS`` order (a snapshot)."""
    return (
        d.token,
        d.owner_id,
        d.name,
        d.method,
        d.status,
        int(d.reconnecting),
        d.webhook_url,
        json.dumps(d.webhook_events) if d.webhook_events is not None else None,
        d.pushname,
        d.platform,
        d.phone,
        d.messages_sent,
        d.messages_received,
        d.created_at,
        d.connected_at,
        d.last_update,
        d.webhook_secret,
        d.jid,
    )


def save_device_sync(conn: Conn, values: tuple[Any, ...]) -> None:
    conn.execute(_INSERT, values)


def stats_values(d: DeviceRow) -> tuple[Any, ...]:
    return (d.messages_sent, d.messages_received, d.last_update, d.token)


def save_stats_sync(conn: Conn, values: tuple[Any, ...]) -> None:
    conn.execute("UPDATE devices SET messages_sent = ?, messages_received = ?, last_update = ? WHERE token = ?", values)

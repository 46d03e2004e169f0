"""The message store's service (CONTRACT §12): history, one message, chats, and the actions on them.

Routes stay thin: they parse and check the request, then call these. What a
message looks like to a client is :func:`message_json` (§11's shape plus
``direction``, ``status``, ``statusAt``). Cursors are opaque to clients: the
base64 of a row's ``seq``, so a page boundary is a position in storage order
and messages stored meanwhile never shift it (no duplicates, no gaps).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from gateway.api.errors import ApiError, invalid
from gateway.drivers.base import (
    DriverError,
    GroupInfo,
    MessageEdited,
    MessageRevoked,
    NotConnectedError,
    NotFoundError,
    QuotedRef,
    Reaction,
    RefusedError,
)
from gateway.messages import record
from gateway.messages.ports import MessagingDevice
from gateway.messages.shape import edited_json, revoked_json
from gateway.store import Store
from gateway.store.messages import ChatRow, MessageRow
from gateway.timestamps import iso, iso_ts

T = TypeVar("T")

EDIT_WINDOW_S = 15 * 60  # WhatsApp accepts edits for 15 minutes
_CURSOR = re.compile(r"^([mc]):([0-9]{1,19})(?::([0-9]{1,19}))?$")


# --- shapes -------------------------------------------------------------------------------------------


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


Sign = Callable[[str], str]  # a media id → a signed link to GET /media/{id}, valid from now


def fresh_media(media: dict[str, Any], sign: Sign | None) -> dict[str, Any]:
    """Stored incoming media with its ``url`` signed now: a link signed when the message arrived has
    expired after MEDIA_URL_TTL_S, so the store keeps none and every read signs again."""
    if "status" not in media:  # media this device sent: what WhatsApp received, no link
        return media
    stored = media.get("status") == "stored" and media.get("id") and sign is not None
    return {**media, "url": sign(media["id"]) if stored and sign is not None else None}


def message_json(row: MessageRow, history: bool = False, sign: Sign | None = None) -> dict[str, Any]:
    """A stored message: §11's shape plus ``direction``, ``status``, ``statusAt`` (and its history)."""
    data: dict[str, Any] = {"id": row.id, "from": row.sender}
    if row.sender_lid:
        data["fromLid"] = row.sender_lid
    data.update(
        fromName=row.sender_name,
        chat=row.chat,
        isGroup=row.chat.endswith("@g.us"),
        fromMe=row.from_me,
        type=row.type,
        text=row.text,
        timestamp=iso_ts(row.ts),
    )
    data.update(row.payload)
    if "media" in row.payload:
        data["media"] = fresh_media(row.payload["media"], sign)
    data.update(direction=row.direction, status=row.status, statusAt=iso_ts(row.status_at))
    if row.error:
        data["error"] = row.error
    if row.edited_at is not None:
        data["editedAt"] = iso_ts(row.edited_at)
    if row.revoked_at is not None:
        data["revokedAt"] = iso_ts(row.revoked_at)
    if history:
        data["statusHistory"] = [{"status": s, "at": iso_ts(at)} for s, at in row.history]
    return data


def chat_json(chat: ChatRow, sign: Sign | None = None) -> dict[str, Any]:
    return {
        "jid": chat.jid,
        "name": chat.name,
        "isGroup": chat.is_group,
        "lastMessage": message_json(chat.last, sign=sign) if chat.last is not None else None,
        "lastMessageAt": iso_ts(chat.last_at),
        "unread": chat.unread,
    }


def group_json(info: GroupInfo) -> dict[str, Any]:
    return {
        "jid": info.jid,
        "name": info.name,
        "topic": info.topic,
        "owner": info.owner,
        "participantCount": len(info.participants),
        "participants": [
            {"phone": p.phone, "jid": p.jid, "isAdmin": p.is_admin, "isSuperAdmin": p.is_super_admin}
            for p in info.participants
        ],
        "createdAt": iso(info.created_at) if info.created_at else None,
    }


# --- cursors and filters ------------------------------------------------------------------------------


def encode_cursor(kind: str, seq: int, snapshot: int | None = None) -> str:
    text = f"{kind}:{seq}" if snapshot is None else f"{kind}:{seq}:{snapshot}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(kind: str, raw: str) -> tuple[int, int | None]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise invalid("'cursor' is not a cursor this gateway gave out") from exc
    match = _CURSOR.match(text)
    if match is None or match.group(1) != kind or len(raw) > 60:
        raise invalid("'cursor' is not a cursor this gateway gave out")
    snapshot = match.group(3)
    return int(match.group(2)), int(snapshot) if snapshot is not None else None


def decode_cursor(kind: str, raw: str | None) -> int | None:
    """The ``seq`` inside a messages cursor; anything else is INVALID_REQUEST."""
    if raw is None or raw == "":
        return None
    seq, snapshot = _decode(kind, raw)
    if snapshot is not None:
        raise invalid("'cursor' is not a cursor this gateway gave out")
    return seq


def decode_chats_cursor(raw: str | None) -> tuple[int | None, int | None]:
    """A chats cursor: the position below which the next page starts, and the first page's snapshot
    (older cursors without one page by position alone)."""
    if raw is None or raw == "":
        return None, None
    return _decode("c", raw)


def parse_time(raw: str | None, name: str) -> float | None:
    """An RFC 3339 query parameter as unix seconds; INVALID_REQUEST when it is not one."""
    if raw is None or raw == "":
        return None
    try:
        dt = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError as exc:
        raise invalid(f"'{name}' must be an RFC 3339 time, e.g. 2026-02-17T10:30:00Z") from exc
    if dt.tzinfo is None:
        raise invalid(f"'{name}' needs a time zone (Z or +hh:mm)")
    return dt.timestamp()


# --- driver calls ---------------------------------------------------------------------------------------


async def call(device: MessagingDevice, fn: Callable[[], Awaitable[T]], failed: str = "SEND_FAILED") -> T:
    """A driver call on behalf of a route, its failures as the contract's codes."""
    device._require_connected()
    try:
        return await fn()
    except NotConnectedError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
    except NotFoundError as exc:
        raise ApiError("NOT_FOUND", str(exc)) from exc
    except RefusedError as exc:
        raise invalid(f"WhatsApp refused: {exc}") from exc
    except DriverError as exc:
        raise ApiError(failed, f"WhatsApp said: {exc}") from exc


# --- the service ---------------------------------------------------------------------------------------


class MessageService:
    """Reads and actions over the message store for one gateway."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time, sign: Sign | None = None) -> None:
        self.store = store
        self.clock = clock
        self.sign = sign  # signs media links as messages are read (the media service's signer)

    def message_json(self, row: MessageRow, history: bool = False) -> dict[str, Any]:
        return message_json(row, history, self.sign)

    def chat_json(self, chat: ChatRow) -> dict[str, Any]:
        return chat_json(chat, self.sign)

    async def page(
        self, token: str, limit: int, cursor: int | None, **filters: Any
    ) -> tuple[list[dict[str, Any]], str | None]:
        rows = await self.store.list_messages(token, limit=limit + 1, before_seq=cursor, **filters)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor("m", rows[-1].seq) if more else None
        return [self.message_json(r) for r in rows], next_cursor

    async def stored(self, token: str, msg_id: str, history: bool = False) -> MessageRow:
        row = await self.store.get_message(token, msg_id, history=history)
        if row is None:
            raise ApiError("NOT_FOUND", f"no message {msg_id} stored for this device")
        return row

    async def chats(
        self, token: str, limit: int, cursor: tuple[int | None, int | None] = (None, None)
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of chats. The cursor carries the first page's snapshot (its newest ``last_seq``), so
        chats that move to the top between pages are neither skipped nor repeated."""
        position, snapshot = cursor
        rows = await self.store.list_chats(token, limit=limit + 1, before_seq=position, snapshot=snapshot)
        more = len(rows) > limit
        rows = rows[:limit]
        if snapshot is None and rows:
            snapshot = rows[0].last_seq if position is None else None
        next_cursor = encode_cursor("c", rows[-1].pos, snapshot) if more else None
        return [self.chat_json(c) for c in rows], next_cursor

    async def quoted(self, token: str, msg_id: str) -> QuotedRef:
        """What a reply needs of the message it quotes: NOT_FOUND when this device never stored it."""
        row = await self.stored(token, msg_id)
        return QuotedRef(row.id, row.chat, row.sender, row.from_me, row.text)

    async def reaction(self, token: str, msg_id: str, emoji: str) -> tuple[str, Reaction]:
        """The chat and reaction for a stored message id (NOT_FOUND otherwise)."""
        row = await self.stored(token, msg_id)
        sender = f"{row.sender}@s.whatsapp.net" if row.sender and "@" not in row.sender else row.sender
        return row.chat, Reaction(row.id, emoji, sender, row.from_me)

    async def edit(self, device: MessagingDevice, msg_id: str, text: str) -> dict[str, Any]:
        row = await self.stored(device.token, msg_id)
        if row.direction != "out" or row.type != "text":
            raise invalid("only a text message this device sent can be edited")
        if row.revoked_at is not None or row.status == "failed":
            raise invalid("this message was deleted or never sent: it cannot be edited")
        if self.clock() - row.ts > EDIT_WINDOW_S:
            raise invalid("WhatsApp allows edits for 15 minutes after sending; this message is older")
        await call(device, lambda: device.driver.edit(row.chat, row.id, text))
        at = self.clock()
        event = edited_json(MessageEdited(row.id, row.chat, row.sender, text, _dt(at), from_me=True))
        await record.action(
            device, "message.edited", event, lambda rows: self.store.edit_message(device.token, row.id, text, at, rows)
        )
        return self.message_json(await self.stored(device.token, msg_id))

    async def revoke(self, device: MessagingDevice, msg_id: str) -> dict[str, Any]:
        row = await self.stored(device.token, msg_id)
        if row.direction != "out":
            raise invalid("only a message this device sent can be deleted for everyone")
        if row.status == "failed":
            raise invalid("this message was never sent")
        if row.revoked_at is None:
            await call(device, lambda: device.driver.revoke(row.chat, row.id))
            at = self.clock()
            event = revoked_json(MessageRevoked(row.id, row.chat, row.sender, _dt(at), from_me=True))
            await record.action(
                device, "message.revoked", event, lambda rows: self.store.revoke_message(device.token, row.id, at, rows)
            )
        return self.message_json(await self.stored(device.token, msg_id))

    async def mark_read(self, device: MessagingDevice, msg_id: str) -> dict[str, Any]:
        """Read receipts for the incoming message and every unread one before it in its chat."""
        row = await self.stored(device.token, msg_id)
        if row.direction != "in":
            raise invalid("only an incoming message can be marked read")
        unread = await self.store.list_messages(
            device.token, limit=1000, before_seq=row.seq + 1, chat=row.chat, direction="in"
        )
        by_sender: dict[str | None, list[str]] = {}
        for m in unread:
            if m.status == "received":
                by_sender.setdefault(m.sender, []).append(m.id)
        group = row.chat.endswith("@g.us")
        for sender, ids in (by_sender or {row.sender: [row.id]}).items():
            author = f"{sender}@s.whatsapp.net" if group and sender else None
            await call(device, partial(device.driver.mark_read, row.chat, ids, author))
        at = self.clock()
        ids = await self.store.mark_chat_read(device.token, row.chat, row.seq, at)
        return {"id": row.id, "chat": row.chat, "read": ids}

    async def media_downloaded(self, token: str, msg_id: str, media: dict[str, Any]) -> None:
        """A retried download stored the media: the stored message shows it (``status``, a link on read)."""
        await self.store.set_message_media(token, msg_id, media)

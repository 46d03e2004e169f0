"""The JSON shape of messages and message events (CONTRACT §11, §12), in one place.

Webhook data, WebSocket frames and the store's rows all use these, so a
message reads the same wherever a client meets it. Optional fields are left
out when absent (``fromLid``, ``media``, ``location``, ``contacts``, ``poll``,
``replyTo``, ``mentions``), as §11's ``?`` marks them.
"""

from __future__ import annotations

from typing import Any

from gateway.drivers.base import (
    ContactCard,
    IncomingMedia,
    IncomingMessage,
    Location,
    MessageEdited,
    MessageRevoked,
    OutgoingMessage,
    Poll,
    ReactionReceived,
)
from gateway.timestamps import iso


def location_json(loc: Location) -> dict[str, Any]:
    out: dict[str, Any] = {"latitude": loc.latitude, "longitude": loc.longitude}
    if loc.name:
        out["name"] = loc.name
    if loc.address:
        out["address"] = loc.address
    return out


def contact_json(card: ContactCard) -> dict[str, Any]:
    out: dict[str, Any] = {"name": card.name, "phones": list(card.phones)}
    if card.email:
        out["email"] = card.email
    if card.organization:
        out["organization"] = card.organization
    if card.vcard:
        out["vcard"] = card.vcard
    return out


def poll_json(poll: Poll) -> dict[str, Any]:
    return {"name": poll.name, "options": list(poll.options), "selectableCount": poll.selectable_count}


def media_json(media: IncomingMedia) -> dict[str, Any]:
    """What the driver tells of incoming media; the media service adds ``id, sha256, url, status``."""
    out: dict[str, Any] = {"type": media.type, "mimetype": media.mimetype, "size": media.size}
    if media.filename:
        out["filename"] = media.filename
    if media.voice_note:
        out["voiceNote"] = True
    return out


def _phone(value: str | None) -> str | None:
    """Mentions and quoted authors as phone digits where they are phone JIDs."""
    if value and value.endswith(("@s.whatsapp.net", "@c.us")):
        return value.partition("@")[0]
    return value


def incoming_json(ev: IncomingMessage) -> dict[str, Any]:
    """``message.received`` / ``message.sent`` data (§11)."""
    data: dict[str, Any] = {"id": ev.id, "from": ev.sender}
    if ev.sender_lid:
        data["fromLid"] = ev.sender_lid
    data.update(
        fromName=ev.sender_name,
        chat=ev.chat,
        isGroup=ev.is_group,
        fromMe=ev.from_me,
        type=ev.type,
        text=ev.text,
        timestamp=iso(ev.timestamp),
    )
    if ev.media is not None:
        data["media"] = media_json(ev.media)
    if ev.location is not None:
        data["location"] = location_json(ev.location)
    if ev.contacts:
        data["contacts"] = [contact_json(c) for c in ev.contacts]
    if ev.poll is not None:
        data["poll"] = poll_json(ev.poll)
    if ev.reply_to is not None:
        data["replyTo"] = {"messageId": ev.reply_to.message_id, "from": _phone(ev.reply_to.sender)}
    if ev.mentions:
        data["mentions"] = [_phone(m) for m in ev.mentions]
    return data


def outgoing_json(message: OutgoingMessage) -> dict[str, Any]:
    """The optional §11 fields of a message this device sent (the store keeps them with it)."""
    data: dict[str, Any] = {}
    if message.media is not None:
        m = message.media
        media: dict[str, Any] = {"type": m.type, "mimetype": m.mimetype, "size": m.size, "sha256": m.sha256}
        if m.filename:
            media["filename"] = m.filename
        if m.voice_note:
            media["voiceNote"] = True
        data["media"] = media
    if message.location is not None:
        data["location"] = location_json(message.location)
    if message.contacts:
        data["contacts"] = [contact_json(c) for c in message.contacts]
    if message.poll is not None:
        data["poll"] = poll_json(message.poll)
    if message.reaction is not None:
        data["reaction"] = {"messageId": message.reaction.message_id, "emoji": message.reaction.emoji}
    if message.reply_to is not None:
        data["replyTo"] = {"messageId": message.reply_to.id, "from": _phone(message.reply_to.sender)}
    if message.mentions:
        data["mentions"] = [_phone(m) for m in message.mentions]
    return data


def outgoing_text(message: OutgoingMessage) -> str | None:
    """The text (or caption) of a message this device sent."""
    if message.media is not None:
        return message.media.caption
    return message.text


def edited_json(ev: MessageEdited) -> dict[str, Any]:
    """``message.edited``: ``{id, chat, text}`` (§11) plus who and when."""
    return {
        "id": ev.id,
        "chat": ev.chat,
        "text": ev.text,
        "from": ev.sender,
        "fromMe": ev.from_me,
        "timestamp": iso(ev.timestamp),
    }


def revoked_json(ev: MessageRevoked) -> dict[str, Any]:
    """``message.revoked``: ``{id, chat, from}`` (§11) plus when."""
    return {"id": ev.id, "chat": ev.chat, "from": ev.sender, "fromMe": ev.from_me, "timestamp": iso(ev.timestamp)}


def reaction_json(ev: ReactionReceived) -> dict[str, Any]:
    """``message.reaction``: ``{messageId, chat, from, emoji}`` (§11) plus when."""
    return {
        "messageId": ev.message_id,
        "chat": ev.chat,
        "from": ev.sender,
        "emoji": ev.emoji,
        "fromMe": ev.from_me,
        "timestamp": iso(ev.timestamp),
    }

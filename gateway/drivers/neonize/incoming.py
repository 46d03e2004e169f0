"""The content of an incoming WhatsApp message: location, contacts (vCards), poll, media, quote, mentions.

Pure functions over the protobufs, used by :mod:`gateway.drivers.neonize.translate`
and tested with hand-built messages (tests/drivers/test_neonize_incoming.py).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.drivers.base import ContactCard, IncomingMedia, Location, MediaRef, MediaType, Poll, ReplyTo
from gateway.drivers.neonize.patches import wa

__all__ = ["Details", "details", "media_message", "parse_vcard"]

PhoneOf = Callable[[str], str | None]
"""A JID string → the phone digits it stands for (resolving LIDs), or None."""

# content field → (§11 media type, whether its mimetype marks a voice note through PTT)
_MEDIA: dict[str, MediaType] = {
    "imageMessage": "image",
    "videoMessage": "video",
    "ptvMessage": "video",
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
}
_POLLS = ("pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV3")
_WITH_CONTEXT = (
    "extendedTextMessage",
    *_MEDIA,
    "locationMessage",
    "liveLocationMessage",
    "contactMessage",
    "contactsArrayMessage",
    *_POLLS,
)


@dataclass(frozen=True, slots=True)
class Details:
    media: IncomingMedia | None = None
    location: Location | None = None
    contacts: tuple[ContactCard, ...] = ()
    poll: Poll | None = None
    reply_to: ReplyTo | None = None
    mentions: tuple[str, ...] = ()


def details(message: wa.Message, phone_of: PhoneOf) -> Details:
    """Everything but the type and text of an (unwrapped) message."""
    media = location = poll = None
    contacts: tuple[ContactCard, ...] = ()
    for name, kind in _MEDIA.items():
        if message.HasField(name):
            media = _media(name, kind, getattr(message, name), message)
            break
    if message.HasField("locationMessage"):
        m = message.locationMessage
        location = Location(m.degreesLatitude, m.degreesLongitude, m.name or None, m.address or None)
    elif message.HasField("liveLocationMessage"):
        live = message.liveLocationMessage
        location = Location(live.degreesLatitude, live.degreesLongitude, live.caption or None, None)
    elif message.HasField("contactMessage"):
        contacts = (_card(message.contactMessage),)
    elif message.HasField("contactsArrayMessage"):
        contacts = tuple(_card(c) for c in message.contactsArrayMessage.contacts)
    for name in _POLLS:
        if message.HasField(name):
            p = getattr(message, name)
            options = tuple(o.optionName for o in p.options)
            poll = Poll(p.name, options, p.selectableOptionsCount or 1)
            break
    reply_to, mentions = _context(message, phone_of)
    return Details(media, location, contacts, poll, reply_to, mentions)


def media_message(ref: MediaRef) -> wa.Message:
    """The message a MediaRef was made from, for ``download_any``."""
    return wa.Message.FromString(base64.b64decode(ref.data))


def _media(name: str, kind: MediaType, m: wa.ImageMessage, whole: wa.Message) -> IncomingMedia:
    # The ref keeps only the media part: download_any needs its keys and path, nothing else.
    ref = MediaRef("neonize", base64.b64encode(wa.Message(**{name: m}).SerializeToString()).decode())
    filename = getattr(m, "fileName", "") or None
    voice = bool(getattr(m, "PTT", False))
    size = int(m.fileLength) if m.fileLength else None
    default = {"sticker": "image/webp", "audio": "audio/ogg"}.get(kind, "application/octet-stream")
    return IncomingMedia(kind, m.mimetype or default, size, ref, filename, voice)


def _card(c: wa.ContactMessage) -> ContactCard:
    card = parse_vcard(c.vcard) if c.vcard else ContactCard(c.displayName)
    if c.displayName and not card.name:
        card = ContactCard(c.displayName, card.phones, card.email, card.organization, card.vcard)
    return card


_TEL = re.compile(r"waid=(\d+)", re.IGNORECASE)


def parse_vcard(raw: str) -> ContactCard:
    """Name, phones (digits; ``waid`` first), e-mail and organisation of a vCard; the raw text is kept."""
    lines: list[str] = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += line[1:]  # folded line
        elif line:
            lines.append(line)
    name = org = email = None
    phones: list[str] = []
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep:
            continue
        prop = key.split(";", 1)[0].upper()
        value = _unescape(value.strip())
        if prop == "FN" and value:
            name = value
        elif prop == "N" and name is None:
            parts = [p for p in value.split(";") if p]
            name = " ".join(reversed(parts[:2])) or None
        elif prop == "ORG" and value:
            org = value.rstrip(";") or None
        elif prop == "EMAIL" and value and email is None:
            email = value
        elif prop == "TEL":
            waid = _TEL.search(key)
            digits = waid.group(1) if waid else "".join(ch for ch in value if ch.isdigit())
            if digits and digits not in phones:
                phones.append(digits)
    return ContactCard(name or "", tuple(phones), email, org, raw)


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")


def _context(message: wa.Message, phone_of: PhoneOf) -> tuple[ReplyTo | None, tuple[str, ...]]:
    for name in _WITH_CONTEXT:
        if message.HasField(name):
            part = getattr(message, name)
            if not part.HasField("contextInfo"):
                return None, ()
            ctx = part.contextInfo
            reply = None
            if ctx.stanzaID:
                reply = ReplyTo(ctx.stanzaID, phone_of(ctx.participant) if ctx.participant else None)
            mentions = tuple(phone_of(j) or j for j in ctx.mentionedJID)
            return reply, mentions
    return None, ()

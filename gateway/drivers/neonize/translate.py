"""Translation: neonize's protobuf events and answers → the driver seam's types.

Pure functions, no threads and no Go calls (a LID is resolved through the
``resolve_lid`` callable the driver passes in), so they are tested with hand-
built protobufs (tests/drivers/test_neonize_translate.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from gateway.drivers.base import (
    Connected,
    DriverError,
    Group,
    HistoryContact,
    HistoryContacts,
    IncomingMessage,
    NotConnectedError,
    PhoneCheck,
    Receipt,
    ReceiptType,
)
from gateway.drivers.neonize.patches import nz, wa

__all__ = [
    "PN_SERVERS",
    "ResolveLid",
    "jid_string",
    "map_error",
    "message_content",
    "parse_jid",
    "phone_checks",
    "sender_phone",
    "to_datetime",
    "translate_connected",
    "translate_group",
    "translate_history",
    "translate_message",
    "translate_receipt",
]

log = logging.getLogger("gateway.drivers.neonize")

ResolveLid = Callable[[str], str | None]
"""Maps a LID's user part to the phone digits it stands for, or None when unknown."""

PN_SERVERS = frozenset({"s.whatsapp.net", "c.us", "hosted"})
_LID_SERVERS = frozenset({"lid", "hosted.lid"})
_SKIPPED_CHAT_SERVERS = frozenset({"broadcast", "newsletter"})


def jid_string(jid: nz.JID) -> str:
    """``user@server`` without the device part (``60123:12@s.whatsapp.net`` -> ``60123@s.whatsapp.net``)."""
    if not jid.User:
        return str(jid.Server)
    return f"{jid.User}@{jid.Server}"


def parse_jid(value: str) -> nz.JID:
    """A JID string (or bare phone digits) as neonize's JID message."""
    user, sep, server = value.strip().partition("@")
    user = user.split(":", 1)[0]
    if not sep or server == "c.us":
        server = "s.whatsapp.net"
    if not user or not server:
        raise ValueError(f"not a JID: {value!r}")
    return nz.JID(User=user, Server=server, RawAgent=0, Device=0, Integrator=0, IsEmpty=False)


def _phone_of(jid: nz.JID, resolve_lid: ResolveLid) -> str | None:
    if not jid.User:
        return None
    if jid.Server in PN_SERVERS:
        return str(jid.User)
    if jid.Server in _LID_SERVERS:
        return resolve_lid(jid.User)
    return None


def sender_phone(source: nz.MessageSource, resolve_lid: ResolveLid) -> str | None:
    """The sender's phone digits: a phone-number JID first, a LID only as a last resort."""
    for jid in (source.Sender, source.SenderAlt):
        if jid.User and jid.Server in PN_SERVERS:
            return str(jid.User)
    for jid in (source.Sender, source.SenderAlt):
        if jid.User and jid.Server in _LID_SERVERS:
            phone = resolve_lid(jid.User)
            if phone:
                return phone
    return None


def to_datetime(value: int) -> datetime:
    """A protobuf timestamp (seconds or, in newer goneonize builds, milliseconds) as UTC."""
    if value <= 0:
        return datetime.now(UTC)
    seconds = value / 1000 if value >= 100_000_000_000 else value
    return datetime.fromtimestamp(seconds, UTC)


# Containers whose payload is another Message (FutureProofMessage.message).
_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "lottieStickerMessage",
    "groupMentionedMessage",
    "botInvokeMessage",
    "editedMessage",
)
# (field, type, attribute holding the text or caption)
_CONTENT: tuple[tuple[str, str, str | None], ...] = (
    ("extendedTextMessage", "text", "text"),
    ("imageMessage", "image", "caption"),
    ("videoMessage", "video", "caption"),
    ("ptvMessage", "video", "caption"),
    ("documentMessage", "document", "caption"),
    ("audioMessage", "audio", None),
    ("stickerMessage", "sticker", None),
    ("stickerPackMessage", "sticker", None),
    ("contactMessage", "contact", None),
    ("contactsArrayMessage", "contact", None),
    ("locationMessage", "location", None),
    ("liveLocationMessage", "location", None),
    ("reactionMessage", "reaction", None),
    ("pollCreationMessage", "poll", None),
    ("pollCreationMessageV2", "poll", None),
    ("pollCreationMessageV3", "poll", None),
    ("pollUpdateMessage", "poll_vote", None),
    ("eventMessage", "event", None),
)
# Fields that carry no user-visible content: a message made only of these is
# protocol chatter (key distribution, revokes, edits, app-state keys) and is not reported.
_NOISE = frozenset(
    {
        "protocolMessage",
        "senderKeyDistributionMessage",
        "fastRatchetKeySenderKeyDistributionMessage",
        "messageContextInfo",
        "keepInChatMessage",
        "pinInChatMessage",
        "encReactionMessage",
        "secretEncryptedMessage",
        "placeholderMessage",
    }
)


def message_content(message: wa.Message) -> tuple[str, str | None] | None:
    """``(type, text)`` of a WhatsApp message; None for protocol chatter that is not a message.

    ``text`` is the body of text messages and the caption of images, videos and
    documents; messages without text (stickers, audio, …) give None.
    """
    for _ in range(4):  # wrappers nest (ephemeral > viewOnce > …), but never deeply
        inner = next((getattr(message, w).message for w in _WRAPPERS if message.HasField(w)), None)
        if inner is None:
            break
        message = inner
    if message.HasField("conversation"):
        return "text", message.conversation or None
    for name, kind, attr in _CONTENT:
        if message.HasField(name):
            text = getattr(getattr(message, name), attr) if attr else None
            return kind, (text or None)
    present = {fd.name for fd, _ in message.ListFields()}
    if present <= _NOISE:
        return None
    return "unknown", None


def translate_message(ev: nz.Message, resolve_lid: ResolveLid) -> IncomingMessage | None:
    """An incoming message, or None for what the gateway does not report.

    Not reported: our own messages (sent from the phone or another linked
    device), status and broadcast/newsletter posts, protocol chatter, and — with
    a warning — a sender whose LID cannot be resolved to a phone number.
    """
    info = ev.Info
    source = info.MessageSource
    if source.IsFromMe or source.Chat.Server in _SKIPPED_CHAT_SERVERS:
        return None
    content = message_content(ev.Message)
    if content is None:
        return None
    phone = sender_phone(source, resolve_lid)
    if phone is None:
        log.warning(
            "neonize: dropping message %s, sender %s has no known phone number", info.ID, jid_string(source.Sender)
        )
        return None
    is_group = source.IsGroup or source.Chat.Server == "g.us"
    # A direct chat addressed by LID is the sender's own chat: name it by phone number too.
    lid_chat = not is_group and source.Chat.Server in _LID_SERVERS
    chat = f"{phone}@s.whatsapp.net" if lid_chat else jid_string(source.Chat)
    kind, text = content
    return IncomingMessage(
        id=info.ID,
        sender=phone,
        sender_name=info.Pushname or None,
        chat=chat,
        is_group=is_group,
        type=kind,
        text=text,
        timestamp=to_datetime(info.Timestamp),
    )


_RECEIPT_TYPES: dict[int, ReceiptType] = {
    nz.Receipt.DELIVERED: "delivered",
    nz.Receipt.READ: "read",
    nz.Receipt.PLAYED: "played",
}


def translate_receipt(ev: nz.Receipt, resolve_lid: ResolveLid) -> Receipt | None:
    """Delivered / read / played receipts for our messages; None for every other kind."""
    kind = _RECEIPT_TYPES.get(ev.Type)
    source = ev.MessageSource
    if kind is None or source.IsFromMe or not ev.MessageIDs:
        return None
    phone = sender_phone(source, resolve_lid)
    sender = f"{phone}@s.whatsapp.net" if phone else jid_string(source.Sender)
    return Receipt(
        type=kind,
        message_ids=tuple(ev.MessageIDs),
        sender=sender,
        timestamp=to_datetime(ev.Timestamp),
    )


def translate_history(
    ev: nz.HistorySync, resolve_lid: ResolveLid, exclude: Iterable[str] = ()
) -> HistoryContacts | None:
    """The people a history sync knows about (push names first), or None when it names nobody."""
    data = ev.Data
    lid_to_pn = {
        m.lidJID.partition("@")[0]: m.pnJID.partition("@")[0]
        for m in data.phoneNumberToLidMappings
        if m.lidJID and m.pnJID
    }

    def resolve(lid_user: str) -> str | None:
        return lid_to_pn.get(lid_user) or resolve_lid(lid_user)

    skip = set(exclude)
    names: dict[str, str | None] = {}

    def add(jid: str, name: str | None) -> None:
        if not jid or "@" not in jid:
            return
        phone = _phone_of(parse_jid(jid), resolve)
        if not phone or not phone.isdigit() or len(phone) < 6 or phone in skip:
            return
        if names.get(phone) is None:
            names[phone] = name or None

    for pushname in data.pushnames:
        add(pushname.ID, pushname.pushname)
    for conv in data.conversations:
        jid = conv.pnJID or conv.ID
        if jid.endswith(("@s.whatsapp.net", "@lid")):
            add(jid, conv.displayName or conv.name)
    for contact in data.inlineContacts:
        add(contact.pnJID or contact.lidJID, contact.fullName or contact.firstName)
    if not names:
        return None
    return HistoryContacts(tuple(HistoryContact(phone, name) for phone, name in names.items()))


def translate_connected(me: nz.Device) -> Connected:
    return Connected(
        pushname=me.PushName or None,
        platform=me.Platform or None,
        phone=me.JID.User or None,
    )


def translate_group(info: nz.GroupInfo, own_users: Iterable[str]) -> Group:
    """A joined group; ``own_users`` are the user parts of our own JID and LID."""
    own = set(own_users) - {""}
    is_admin = is_super_admin = False
    for participant in info.Participants:
        users = {participant.JID.User, participant.LID.User, participant.PhoneNumber.User}
        if users & own:
            is_admin, is_super_admin = participant.IsAdmin, participant.IsSuperAdmin
            break
    owner_jid = info.OwnerPN if info.OwnerPN.User else info.OwnerJID
    return Group(
        jid=jid_string(info.JID),
        name=info.GroupName.Name,
        topic=info.GroupTopic.Topic,
        owner=jid_string(owner_jid) if owner_jid.User else None,
        participant_count=len(info.Participants),
        is_admin=is_admin or is_super_admin,
        is_super_admin=is_super_admin,
    )


def phone_checks(phones: list[str], responses: Iterable[nz.IsOnWhatsAppResponse]) -> list[PhoneCheck]:
    """One answer per asked phone, in the order asked; a phone WhatsApp did not mention is not on it."""
    by_phone: dict[str, nz.IsOnWhatsAppResponse] = {}
    for response in responses:
        for key in (response.Query.lstrip("+"), response.JID.User):
            if key:
                by_phone.setdefault(key, response)
    checks = []
    for phone in phones:
        response = by_phone.get(phone)
        if response is None or not response.IsIn:
            checks.append(PhoneCheck(phone=phone, is_on_whatsapp=False, jid=None))
            continue
        verified = response.VerifiedName.Details.verifiedName if response.HasField("VerifiedName") else ""
        jid = jid_string(response.JID) if response.JID.User else f"{phone}@s.whatsapp.net"
        checks.append(PhoneCheck(phone=phone, is_on_whatsapp=True, jid=jid, verified_name=verified or None))
    return checks


_NOT_CONNECTED_MARKERS = (
    "not connected",
    "client is nil",
    "doesn't contain a device jid",
    "not logged in",
)


def map_error(exc: BaseException, kind: type[DriverError]) -> DriverError:
    """A neonize failure as the seam's exception: NotConnectedError when the socket is down."""
    if isinstance(exc, DriverError):
        return exc
    message = str(exc) or type(exc).__name__
    if any(marker in message.lower() for marker in _NOT_CONNECTED_MARKERS):
        return NotConnectedError(message)
    return kind(message)

"""Translation: neonize's protobuf events and answers → the driver seam's types.

Pure functions, no threads and no Go calls (a LID is resolved through the
``resolve_lid`` callable the driver passes in), so they are tested with hand-
built protobufs (tests/drivers/test_neonize_translate.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from gateway.drivers.base import (
    Connected,
    DriverError,
    FencedError,
    Group,
    GroupInfo,
    GroupParticipant,
    HistoryContact,
    HistoryContacts,
    IncomingMessage,
    MessageEdited,
    MessageRevoked,
    NotConnectedError,
    ParticipantResult,
    PhoneCheck,
    ReactionReceived,
    Receipt,
    ReceiptType,
)
from gateway.drivers.neonize.incoming import details
from gateway.drivers.neonize.patches import nz, wa

__all__ = [
    "PN_SERVERS",
    "MessageEvent",
    "ResolveLid",
    "device_jid_string",
    "jid_string",
    "map_error",
    "message_content",
    "parse_device_jid",
    "parse_jid",
    "participant_results",
    "phone_checks",
    "sender_phone",
    "to_datetime",
    "translate_connected",
    "translate_group",
    "translate_group_info",
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


def device_jid_string(jid: nz.JID) -> str | None:
    """The full JID of a linked device as whatsmeow writes it (``user:device@server``, ``user.agent:device@…``):
    the key of its row in ``whatsmeow_device``. None for an empty JID."""
    if not jid.User:
        return None
    if jid.RawAgent > 0:
        return f"{jid.User}.{jid.RawAgent}:{jid.Device}@{jid.Server}"
    if jid.Device > 0:
        return f"{jid.User}:{jid.Device}@{jid.Server}"
    return f"{jid.User}@{jid.Server}"


_DEVICE_JID = re.compile(r"([0-9A-Za-z_-]{1,64})(?:\.([0-9]{1,3}))?(?::([0-9]{1,5}))?@([a-z.]{1,32})")


def parse_device_jid(value: str) -> nz.JID:
    """A full device JID (``user:device@server``) as neonize's JID message: the one ``Neonize()`` resumes.

    Raises ValueError for anything else: a malformed JID must never reach Go.
    """
    match = _DEVICE_JID.fullmatch(value)
    if match is None:
        raise ValueError(f"not a device JID: {value[:80]!r}")
    user, agent, device, server = match.groups()
    return nz.JID(
        User=user,
        RawAgent=int(agent or 0),
        Device=int(device or 0),
        Integrator=0,
        Server=server,
        IsEmpty=False,
    )


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
    ("contactMessage", "contacts", None),
    ("contactsArrayMessage", "contacts", None),
    ("locationMessage", "location", None),
    ("liveLocationMessage", "location", None),
    ("pollCreationMessage", "poll", None),
    ("pollCreationMessageV2", "poll", None),
    ("pollCreationMessageV3", "poll", None),
    ("pollUpdateMessage", "unknown", None),  # a vote (encrypted with the poll's secret)
    ("eventMessage", "unknown", None),
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
    message = unwrap(message)
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


MessageEvent = IncomingMessage | MessageEdited | MessageRevoked | ReactionReceived


def unwrap(message: wa.Message) -> wa.Message:
    """The message inside ephemeral / view-once / … containers (they nest, but never deeply)."""
    for _ in range(4):
        inner = next((getattr(message, w).message for w in _WRAPPERS if message.HasField(w)), None)
        if inner is None:
            break
        message = inner
    return message


def translate_message(ev: nz.Message, resolve_lid: ResolveLid, own_phone: str | None = None) -> MessageEvent | None:
    """An incoming message, an edit, a revoke or a reaction; None for what is not reported.

    Messages typed on the linked phone (``IsFromMe``) are reported with
    ``from_me`` and ``sender`` = ``own_phone``. A sender whose LID cannot be
    resolved is reported with ``sender`` None and ``sender_lid`` — never
    dropped. Not reported: status and broadcast/newsletter posts, protocol chatter.
    """
    info = ev.Info
    source = info.MessageSource
    if source.Chat.Server in _SKIPPED_CHAT_SERVERS:
        return None
    from_me = bool(source.IsFromMe)
    phone = (own_phone or sender_phone(source, resolve_lid)) if from_me else sender_phone(source, resolve_lid)
    lid = None
    if phone is None:
        lid_jid = next((j for j in (source.Sender, source.SenderAlt) if j.User and j.Server in _LID_SERVERS), None)
        lid = jid_string(lid_jid) if lid_jid is not None else (jid_string(source.Sender) or None)
        log.info("neonize: message %s from %s: no phone number known, reported with its LID", info.ID, lid)
    is_group = source.IsGroup or source.Chat.Server == "g.us"
    chat = _chat(source, is_group, resolve_lid, None if from_me else phone)
    timestamp = to_datetime(info.Timestamp)

    raw = ev.Raw if ev.HasField("Raw") else ev.Message
    action = _action(raw, ev, info.ID, chat, phone, from_me, timestamp)
    if action is not None:
        return action
    message = unwrap(ev.Message)
    content = message_content(message)
    if content is None:
        return None
    kind, text = content
    if ev.IsEdit:  # whatsmeow unwrapped an edit without leaving its protocol message: Info.ID is the target
        return MessageEdited(info.ID, chat, phone, text, timestamp, from_me)
    extra = details(message, lambda j: _phone_of(parse_jid(j), resolve_lid) if "@" in j else None)
    return IncomingMessage(
        id=info.ID,
        sender=phone,
        sender_name=info.Pushname or None,
        chat=chat,
        is_group=is_group,
        type=kind,
        text=text,
        timestamp=timestamp,
        sender_lid=lid,
        from_me=from_me,
        media=extra.media,
        location=extra.location,
        contacts=extra.contacts,
        poll=extra.poll,
        reply_to=extra.reply_to,
        mentions=extra.mentions,
    )


def _chat(source: nz.MessageSource, is_group: bool, resolve_lid: ResolveLid, sender: str | None) -> str:
    """The chat's JID; a direct chat addressed by LID is named by the phone number when it is known."""
    chat = source.Chat
    if is_group or chat.Server not in _LID_SERVERS:
        return jid_string(chat)
    phone = sender if sender and not source.IsFromMe else resolve_lid(chat.User)
    if phone is None and source.IsFromMe and source.RecipientAlt.User and source.RecipientAlt.Server in PN_SERVERS:
        phone = str(source.RecipientAlt.User)
    return f"{phone}@s.whatsapp.net" if phone else jid_string(chat)


def _action(
    raw: wa.Message,
    ev: nz.Message,
    msg_id: str,
    chat: str,
    sender: str | None,
    from_me: bool,
    timestamp: datetime,
) -> MessageEvent | None:
    """An edit, a revoke or a reaction carried by ``raw``; None for an ordinary message."""
    message = raw
    for _ in range(4):  # an edit is a protocol message inside editedMessage, maybe inside ephemeral
        proto = message.protocolMessage if message.HasField("protocolMessage") else None
        if proto is not None:
            if proto.type == wa.ProtocolMessage.REVOKE and proto.key.ID:
                return MessageRevoked(proto.key.ID, chat, sender, timestamp, from_me)
            if proto.type == wa.ProtocolMessage.MESSAGE_EDIT and proto.key.ID:
                edited = message_content(unwrap(proto.editedMessage)) if proto.HasField("editedMessage") else None
                return MessageEdited(proto.key.ID, chat, sender, edited[1] if edited else None, timestamp, from_me)
            return None
        if message.HasField("reactionMessage"):
            r = message.reactionMessage
            return ReactionReceived(r.key.ID or msg_id, chat, sender, r.text, timestamp, from_me)
        inner = next((getattr(message, w).message for w in _WRAPPERS if message.HasField(w)), None)
        if inner is None:
            return None
        message = inner
    return None


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
        jid=device_jid_string(me.JID),
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


def translate_group_info(info: nz.GroupInfo, resolve_lid: ResolveLid) -> GroupInfo:
    """A group with its participants, each named by phone number where one is known."""
    participants = []
    for part in info.Participants:
        phone = None
        for j in (part.PhoneNumber, part.JID, part.LID):
            phone = _phone_of(j, resolve_lid)
            if phone:
                break
        jid = jid_string(part.JID) if part.JID.User else (jid_string(part.LID) if part.LID.User else "")
        participants.append(GroupParticipant(phone, jid, part.IsAdmin or part.IsSuperAdmin, part.IsSuperAdmin))
    owner_jid = info.OwnerPN if info.OwnerPN.User else info.OwnerJID
    created = int(info.GroupCreated) if info.GroupCreated else 0
    return GroupInfo(
        jid=jid_string(info.JID),
        name=info.GroupName.Name,
        topic=info.GroupTopic.Topic,
        owner=jid_string(owner_jid) if owner_jid.User else None,
        participants=tuple(participants),
        created_at=to_datetime(created) if created > 0 else None,
    )


def participant_results(asked: list[str], answers: Iterable[nz.GroupParticipant]) -> list[ParticipantResult]:
    """One result per asked JID, in the order asked: WhatsApp answers per participant with an error code."""
    by_user: dict[str, nz.GroupParticipant] = {}
    for a in answers:
        for j in (a.JID, a.PhoneNumber, a.LID):
            if j.User:
                by_user.setdefault(str(j.User), a)
    results = []
    for jid in asked:
        user = jid.partition("@")[0]
        answer = by_user.get(user)
        if answer is None:
            results.append(ParticipantResult(user, False, "no answer from WhatsApp"))
        elif answer.Error:
            results.append(
                ParticipantResult(user, False, _PARTICIPANT_ERRORS.get(answer.Error, f"error {answer.Error}"))
            )
        else:
            results.append(ParticipantResult(user, True))
    return results


# WhatsApp's per-participant codes (as whatsmeow passes them on)
_PARTICIPANT_ERRORS = {
    403: "not allowed (privacy settings or not an admin)",
    404: "not on WhatsApp",
    406: "cannot be changed (e.g. the group's creator)",
    408: "left the group recently: invite them instead",
    409: "already a participant",
    500: "the group is full",
}


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


FENCE_MARKER = "wa-gateway fence"  # the refusal of gateway_whatsmeow_fence() (gateway/store/pg_schema.py, 11)


def map_error(exc: BaseException, kind: type[DriverError]) -> DriverError:
    """A neonize failure as the seam's exception: NotConnectedError when the socket is down, FencedError
    when the shared store refused whatsmeow's write because another node holds the device now."""
    if isinstance(exc, DriverError):
        return exc
    message = str(exc) or type(exc).__name__
    if FENCE_MARKER in message:
        return FencedError(f"this node no longer holds the device: {message}")
    if any(marker in message.lower() for marker in _NOT_CONNECTED_MARKERS):
        return NotConnectedError(message)
    return kind(message)

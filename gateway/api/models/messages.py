"""The message kinds of CONTRACT §11 and the store's shapes of §12, as request and response models.

Request parts (:class:`LocationIn`, :class:`ContactIn`, :class:`PollIn`,
:class:`ReactionIn`) are decoded with their parent body; their value rules
(ranges, counts) are checked by :mod:`gateway.messages.content` after
decoding, in the contract's order, and answer ``INVALID_MESSAGE``. Response
models describe what :mod:`gateway.messages.shape` builds.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from gateway.api.models.base import MAX_TEXT, Body, Model, described, rules

MAX_POLL_OPTIONS = 12
MAX_CONTACTS = 50
MESSAGE_TYPES = ["text", "image", "video", "audio", "document", "sticker", "location", "contacts", "poll", "unknown"]
STATUSES = ["pending", "sent", "delivered", "read", "played", "failed", "received"]
Time = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]
MessageId = Annotated[str, rules(minLength=1, maxLength=128, examples=["3EB0C767D26A1D8B9F4A"])]
Text = Annotated[str, rules(minLength=1, maxLength=MAX_TEXT)]


# --- request parts ------------------------------------------------------------------------------------


class LocationIn(Body):
    __required__: ClassVar[tuple[str, ...]] = ("latitude", "longitude")
    latitude: Annotated[float, rules(minimum=-90, maximum=90, examples=[3.1579])] | None = None
    longitude: Annotated[float, rules(minimum=-180, maximum=180, examples=[101.7116])] | None = None
    name: str | None = None
    address: str | None = None


class ContactIn(Body):
    __required__: ClassVar[tuple[str, ...]] = ("name", "phones")
    name: Annotated[str, rules(minLength=1, examples=["Aisyah Rahman"])] | None = None
    phones: Annotated[list[str], rules(minItems=1, maxItems=10, examples=[["+60 12-345 6789"]])] | None = None
    email: str | None = None
    organization: str | None = None


class PollIn(Body):
    __required__: ClassVar[tuple[str, ...]] = ("name", "options")
    name: Annotated[str, rules(minLength=1, examples=["Which slot suits you?"])] | None = None
    options: (
        Annotated[
            list[str],
            rules(minItems=2, maxItems=MAX_POLL_OPTIONS, uniqueItems=True, examples=[["Mon 10:00", "Tue 15:00"]]),
        ]
        | None
    ) = None
    selectable_count: Annotated[int, rules(minimum=1, default=1)] | None = None


class ReactionIn(Body):
    __required__: ClassVar[tuple[str, ...]] = ("messageId", "emoji")
    message_id: MessageId | None = None
    emoji: Annotated[str, described('an emoji; "" removes the reaction', examples=["👍"])] | None = None


Contacts = Annotated[list[ContactIn], rules(minItems=1, maxItems=MAX_CONTACTS)]
Mentions = Annotated[list[str], described("phone numbers, shown as @mentions", examples=[["60198765432"]])]


class SandboxMediaIn(Body):
    """Media the simulated phone sends: base64 ``data`` (a ``url`` is fetched by the media service)."""

    data: Annotated[str, described("the file, base64")] | None = None
    url: str | None = None
    mimetype: str | None = None
    filename: str | None = None
    caption: str | None = None
    voice_note: bool | None = None
    type: Annotated[str, rules(enum=["image", "video", "audio", "document", "sticker"])] | None = None


class SandboxIncoming(Body):
    """``POST /sandbox/devices/{token}/incoming``: a message of any kind from ``from`` (or ``fromLid``),
    or typed on the phone (``fromMe``: ``from`` names the chat partner)."""

    __required__: ClassVar[tuple[str, ...]] = ("from",)
    sender: Annotated[str, described("phone number of the sender (the partner when fromMe)")] | None = msgspec.field(
        default=None, name="from"
    )
    from_lid: Annotated[str, described("an unresolvable sender: <digits>@lid, instead of from")] | None = None
    from_me: bool | None = None
    name: str | None = None
    chat: Annotated[str, described("a group JID (…@g.us) for a group message")] | None = None
    text: Text | None = None
    media: SandboxMediaIn | None = None
    location: LocationIn | None = None
    contacts: Contacts | None = None
    reaction: ReactionIn | None = None
    poll: PollIn | None = None
    reply_to: MessageId | None = None
    mentions: Mentions | None = None


class SandboxEdit(Body):
    __required__: ClassVar[tuple[str, ...]] = ("id", "text")
    id: MessageId | None = None
    text: Text | None = None


class SandboxRevoke(Body):
    __required__: ClassVar[tuple[str, ...]] = ("id",)
    id: MessageId | None = None


# --- response parts ------------------------------------------------------------------------------------


class Location(Model):
    latitude: float
    longitude: float
    name: str | msgspec.UnsetType = msgspec.UNSET
    address: str | msgspec.UnsetType = msgspec.UNSET


class ContactCard(Model):
    name: str
    phones: list[str]
    email: str | msgspec.UnsetType = msgspec.UNSET
    organization: str | msgspec.UnsetType = msgspec.UNSET
    vcard: Annotated[str, described("the vCard as received")] | msgspec.UnsetType = msgspec.UNSET


class Poll(Model):
    name: str
    options: list[str]
    selectable_count: int


class ReplyTo(Model):
    message_id: str
    sender: Annotated[str | None, described("the quoted message's author (phone digits)")] = msgspec.field(name="from")


class Reaction(Model):
    message_id: str
    emoji: str


class MediaInfo(Model):
    """A message's media. Incoming: downloaded and stored by the gateway (``status: stored``, ``url`` a
    signed link fetchable without a key until it expires), or ``status: failed`` with ``id``,
    ``sha256`` and ``url`` null. Sent (``/sent``, stored messages): what WhatsApp received."""

    type: str
    mimetype: str
    size: int | None
    sha256: str | msgspec.UnsetType | None = msgspec.UNSET
    filename: str | msgspec.UnsetType = msgspec.UNSET
    voice_note: bool | msgspec.UnsetType = msgspec.UNSET
    id: str | msgspec.UnsetType | None = msgspec.UNSET
    url: Annotated[str, described("signed link: PUBLIC_URL/media/{id}?exp=…&sig=…")] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    status: Annotated[str, rules(enum=["stored", "failed"])] | msgspec.UnsetType = msgspec.UNSET


class IncomingSimulated(Model):
    token: str
    id: str
    sender: str | None = msgspec.field(name="from")
    from_lid: str | None = None


class ActionSimulated(Model):
    token: str
    id: str


class ReactionSimulated(Model):
    token: str
    message_id: str
    sender: str = msgspec.field(name="from")


class SandboxSent(Model):
    """One message as the simulated WhatsApp received it (CONTRACT §11's sandbox ``/sent``)."""

    id: str
    to: str
    type: str
    timestamp: Time
    text: str | msgspec.UnsetType = msgspec.UNSET
    media: MediaInfo | msgspec.UnsetType = msgspec.UNSET
    location: Location | msgspec.UnsetType = msgspec.UNSET
    contacts: list[ContactCard] | msgspec.UnsetType = msgspec.UNSET
    reaction: Reaction | msgspec.UnsetType = msgspec.UNSET
    poll: Poll | msgspec.UnsetType = msgspec.UNSET
    reply_to: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    mentions: list[str] | msgspec.UnsetType = msgspec.UNSET
    edited_at: Time | msgspec.UnsetType = msgspec.UNSET
    revoked: bool | msgspec.UnsetType = msgspec.UNSET


class SandboxSentList(Model):
    token: str
    messages: list[SandboxSent]


# --- webhook / frame data ----------------------------------------------------------------------------


class MessageData(Model):
    """``message.received`` / ``message.sent`` data (§11): optional fields are left out when absent."""

    id: str
    sender: Annotated[str | None, described("the sender's phone digits (never a LID); null: see fromLid")] = (
        msgspec.field(name="from")
    )
    from_name: str | None
    chat: Annotated[str, described("the chat's JID")]
    is_group: bool
    from_me: bool
    type: Annotated[str, rules(enum=MESSAGE_TYPES)]
    text: Annotated[str | None, described("the text, or the caption of media")]
    timestamp: Time
    from_lid: Annotated[str, described("the sender's LID when no phone number is known")] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    media: MediaInfo | msgspec.UnsetType = msgspec.UNSET
    location: Location | msgspec.UnsetType = msgspec.UNSET
    contacts: list[ContactCard] | msgspec.UnsetType = msgspec.UNSET
    poll: Poll | msgspec.UnsetType = msgspec.UNSET
    reaction: Reaction | msgspec.UnsetType = msgspec.UNSET
    reply_to: ReplyTo | msgspec.UnsetType = msgspec.UNSET
    mentions: list[str | None] | msgspec.UnsetType = msgspec.UNSET


class MessageEdited(Model):
    id: str
    chat: str
    text: str | None
    sender: str | None = msgspec.field(name="from")
    from_me: bool
    timestamp: Time


class MessageRevoked(Model):
    id: str
    chat: str
    sender: str | None = msgspec.field(name="from")
    from_me: bool
    timestamp: Time


class MessageReaction(Model):
    message_id: str
    chat: str
    sender: str | None = msgspec.field(name="from")
    emoji: Annotated[str, described('"" when the reaction was removed')]
    from_me: bool
    timestamp: Time


class MessageStatus(Model):
    """``message.status``: an outgoing message's status changed."""

    id: str
    chat: str
    status: Annotated[str, rules(enum=["sent", "delivered", "read", "played", "failed"])]
    at: Time


Direction = Literal["in", "out"]


# --- the store's routes (§12) ------------------------------------------------------------------------


class StatusAt(Model):
    status: str
    at: Time


class StoredReaction(Model):
    """A reaction on a stored message: one per person, the latest (a removed one is gone)."""

    sender: Annotated[str | None, described("who reacted (phone digits); this device's number when fromMe")] = (
        msgspec.field(name="from")
    )
    emoji: str
    from_me: bool
    timestamp: Time


class StoredMessage(MessageData, kw_only=True):
    """A stored message: §11's shape plus where it went and how far it got."""

    direction: Direction
    status: Annotated[str, rules(enum=STATUSES)]
    status_at: Time
    error: Annotated[str, described("why the send failed")] | msgspec.UnsetType = msgspec.UNSET
    edited_at: Time | msgspec.UnsetType = msgspec.UNSET
    revoked_at: Time | msgspec.UnsetType = msgspec.UNSET
    reactions: list[StoredReaction] | msgspec.UnsetType = msgspec.UNSET
    status_history: list[StatusAt] | msgspec.UnsetType = msgspec.UNSET


class MessagePage(Model):
    messages: list[StoredMessage]
    next_cursor: Annotated[str | None, described("pass as ?cursor= for the next page; null at the end")]


class Chat(Model):
    jid: str
    name: str | None
    is_group: bool
    last_message: StoredMessage | None
    last_message_at: Time
    unread: int


class ChatPage(Model):
    chats: list[Chat]
    next_cursor: str | None


class MessagesRead(Model):
    id: str
    chat: str
    read: Annotated[list[str], described("the incoming messages of the chat that became read")]


class PresenceShown(Model):
    token: str
    chat: str
    state: str


class GroupMember(Model):
    phone: str | None
    jid: str
    is_admin: bool
    is_super_admin: bool


class GroupDetail(Model):
    jid: str
    name: str
    topic: str
    owner: str | None
    participant_count: int
    participants: list[GroupMember]
    created_at: Time | None


class ParticipantOutcome(Model):
    phone: str
    ok: bool
    error: str | None = None


class ParticipantsChanged(Model):
    jid: str
    action: str
    results: list[ParticipantOutcome]


class InviteLink(Model):
    jid: str
    link: str


class GroupLeft(Model):
    jid: str
    left: bool


class EditMessage(Body):
    __required__: ClassVar[tuple[str, ...]] = ("text",)
    text: Text | None = None


class PresenceIn(Body):
    __required__: ClassVar[tuple[str, ...]] = ("state",)
    state: Annotated[str, rules(enum=["composing", "recording", "paused"])] | None = None


class GroupCreate(Body):
    __required__: ClassVar[tuple[str, ...]] = ("name", "participants")
    name: Annotated[str, rules(minLength=1, maxLength=100, examples=["Acme x Customer"])] | None = None
    participants: Annotated[list[str], rules(maxItems=256, examples=[["60198765432"]])] | None = None


class ParticipantsIn(Body):
    __required__: ClassVar[tuple[str, ...]] = ("action", "participants")
    action: Annotated[str, rules(enum=["add", "remove", "promote", "demote"])] | None = None
    participants: Annotated[list[str], rules(minItems=1, maxItems=256, examples=[["60198765432"]])] | None = None

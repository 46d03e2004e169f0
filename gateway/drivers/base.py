"""The driver seam: what the gateway needs from WhatsApp, and nothing more.

A driver links one device (one WhatsApp number, named by its ``token``). The
gateway calls the async methods below and consumes the typed events the driver
reports through :meth:`Driver.events`. Drivers never import routes or the store;
the device manager knows drivers only through this module.

Exceptions raised across the seam::

    DriverError
    ├── ConnectError       WhatsApp could not be reached (dial failure, timeout)
    ├── NotConnectedError  the call needs a live connection and there is none
    ├── SendError          the message was not accepted
    ├── CheckError         the on-WhatsApp / groups query failed
    ├── NotFoundError      the group (or message) WhatsApp was asked about does not exist
    └── RefusedError       WhatsApp refused the action (not an admin, not a participant, …)

Content crosses the seam as plain frozen dataclasses: :class:`OutgoingMessage`
(exactly one content: text, media, location, contacts, reaction or poll) on the
way out, :class:`IncomingMessage` and the edit / revoke / reaction events on
the way in. A driver never receives a URL: media is a local file the gateway
prepared (:class:`OutgoingMedia`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

Method = Literal["qr", "code"]
ReceiptType = Literal["delivered", "read", "played"]
MediaType = Literal["image", "video", "audio", "document", "sticker"]
PresenceState = Literal["composing", "recording", "paused"]
ParticipantAction = Literal["add", "remove", "promote", "demote"]


class DriverError(Exception):
    """Base of everything a driver raises on purpose."""


class ConnectError(DriverError):
    """WhatsApp could not be reached."""


class NotConnectedError(DriverError):
    """The call needs a live connection."""


class FencedError(NotConnectedError):
    """The session store refused the write: this node no longer holds the device (cluster mode: its lease
    expired or moved, and the fence at whatsmeow's tables stops a stale owner). The device is being
    stopped here; a caller should retry, and reach the device's new node."""


class SendError(DriverError):
    """The message was not sent."""


class CheckError(DriverError):
    """A query to WhatsApp (on-WhatsApp check, groups) failed."""


class NotFoundError(DriverError):
    """The group or message WhatsApp was asked about does not exist (or we are not in it)."""


class RefusedError(DriverError):
    """WhatsApp refused the action: not an admin of the group, not a participant, …"""


# --- message content (both directions) ---------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class ContactCard:
    """One contact of a contacts message; ``vcard`` is the raw vCard when one was received."""

    name: str
    phones: tuple[str, ...] = ()
    email: str | None = None
    organization: str | None = None
    vcard: str | None = None


@dataclass(frozen=True, slots=True)
class Poll:
    name: str
    options: tuple[str, ...]
    selectable_count: int = 1


@dataclass(frozen=True, slots=True)
class Reaction:
    """A reaction to ``message_id`` (``emoji`` empty removes it).

    ``sender`` (a JID) and ``from_me`` name who wrote the target message:
    WhatsApp keys a reaction by the target's chat, sender and id.
    """

    message_id: str
    emoji: str
    sender: str | None = None
    from_me: bool = False


@dataclass(frozen=True, slots=True)
class QuotedRef:
    """What a driver needs to quote a stored message in a reply."""

    id: str
    chat: str
    sender: str | None  # the quoted message's author: phone digits or JID
    from_me: bool = False
    text: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyTo:
    """The message an incoming one replies to."""

    message_id: str
    sender: str | None  # phone digits when known


@dataclass(frozen=True, slots=True)
class MediaRef:
    """An opaque, JSON-able handle to an incoming message's media, kept so a download can be retried.

    ``driver`` names who made it; ``data`` is the driver's own string (neonize: the
    message protobuf, base64; sandbox: the key it keeps the bytes under).
    """

    driver: str
    data: str


@dataclass(frozen=True, slots=True)
class OutgoingMedia:
    """Media to send: a local file the gateway prepared (fetched, uploaded, converted)."""

    type: MediaType
    path: Path
    mimetype: str
    size: int
    sha256: str
    filename: str | None = None
    caption: str | None = None
    voice_note: bool = False
    thumbnail: bytes | None = None  # JPEG
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class IncomingMedia:
    type: MediaType
    mimetype: str
    size: int | None
    ref: MediaRef
    filename: str | None = None
    voice_note: bool = False


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to send: exactly one content field, plus an optional quote and mentions."""

    text: str | None = None
    media: OutgoingMedia | None = None
    location: Location | None = None
    contacts: tuple[ContactCard, ...] = ()
    reaction: Reaction | None = None
    poll: Poll | None = None
    reply_to: QuotedRef | None = None
    mentions: tuple[str, ...] = ()  # JIDs
    # The id to send under, chosen by the caller (a campaign's per-recipient idempotency key). WhatsApp
    # keeps one message per id, so resending after a crash cannot deliver it twice. Only a driver whose
    # ``keeps_message_ids`` is true honours it; the others give the message an id of their own.
    id: str | None = None

    def __post_init__(self) -> None:
        filled = sum(x is not None for x in (self.text, self.media, self.location, self.reaction, self.poll)) + bool(
            self.contacts
        )
        if filled != 1:
            raise ValueError(f"an OutgoingMessage has exactly one content, not {filled}")

    @property
    def type(self) -> str:
        """The §11 ``type`` of this message (``reaction`` for a reaction)."""
        if self.media is not None:
            return self.media.type
        if self.location is not None:
            return "location"
        if self.contacts:
            return "contacts"
        if self.reaction is not None:
            return "reaction"
        if self.poll is not None:
            return "poll"
        return "text"


# --- events ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Qr:
    """A new QR string to show (``2@…``); replaces the previous one."""

    code: str


@dataclass(frozen=True, slots=True)
class PairingCode:
    """A pairing code (``ABCD-EFGH``) to type on the phone."""

    code: str


@dataclass(frozen=True, slots=True)
class Connected:
    """The device is online and paired."""

    pushname: str | None = None
    platform: str | None = None
    phone: str | None = None  # the linked number's digits, when known
    jid: str | None = None  # the linked device's full JID (user:device@server): recorded in the registry


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection was lost (not a logout). ``reason`` is shown to users."""

    reason: str = "Disconnected"


@dataclass(frozen=True, slots=True)
class Replaced:
    """Another client opened this same session (WhatsApp's ``StreamReplaced``): this connection was closed.

    Not a network loss: reconnecting would take the session back from the other client, which would
    take it back in turn — two holders flapping forever. The device stays disconnected (session kept)
    until someone asks it to connect again.
    """

    reason: str = "Replaced by another connection of the same session"


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """The phone unlinked this device; its session is gone."""

    reason: str = "Logged out"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message received by the device, or typed on the linked phone (``from_me``).

    ``sender`` is the sender's phone digits (never a LID: drivers resolve LIDs
    before reporting); when a LID cannot be resolved, ``sender`` is None and
    ``sender_lid`` carries it (``<digits>@lid``) — the message is never dropped.
    ``chat`` is the chat's JID (for ``from_me``, the other party's). ``text`` is
    the text or the caption.
    """

    id: str
    sender: str | None
    sender_name: str | None
    chat: str
    is_group: bool
    type: str
    text: str | None
    timestamp: datetime
    sender_lid: str | None = None
    from_me: bool = False
    media: IncomingMedia | None = None
    location: Location | None = None
    contacts: tuple[ContactCard, ...] = ()
    poll: Poll | None = None
    reply_to: ReplyTo | None = None
    mentions: tuple[str, ...] = ()  # phone digits (or JIDs that could not be resolved)


@dataclass(frozen=True, slots=True)
class MessageEdited:
    """A message was edited by its author (``from_me``: on the linked phone)."""

    id: str
    chat: str
    sender: str | None
    text: str | None
    timestamp: datetime
    from_me: bool = False


@dataclass(frozen=True, slots=True)
class MessageRevoked:
    """A message was deleted for everyone by its author."""

    id: str
    chat: str
    sender: str | None
    timestamp: datetime
    from_me: bool = False


@dataclass(frozen=True, slots=True)
class ReactionReceived:
    """A reaction to ``message_id`` (``emoji`` empty: the reaction was removed)."""

    message_id: str
    chat: str
    sender: str | None
    emoji: str
    timestamp: datetime
    from_me: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """Delivery / read / played receipt for messages this device sent."""

    type: ReceiptType
    message_ids: tuple[str, ...]
    sender: str  # JID of whoever sent the receipt
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class HistoryContact:
    phone: str
    name: str | None


@dataclass(frozen=True, slots=True)
class HistoryContacts:
    """Contacts found by a history sync, as one batch."""

    contacts: tuple[HistoryContact, ...]


DriverEvent = (
    Qr
    | PairingCode
    | Connected
    | Disconnected
    | LoggedOut
    | Replaced
    | IncomingMessage
    | Receipt
    | HistoryContacts
    | MessageEdited
    | MessageRevoked
    | ReactionReceived
)


# --- call results ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentMessage:
    id: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class PhoneCheck:
    phone: str
    is_on_whatsapp: bool
    jid: str | None
    verified_name: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    jid: str
    name: str
    topic: str
    owner: str | None
    participant_count: int
    is_admin: bool
    is_super_admin: bool


@dataclass(frozen=True, slots=True)
class GroupParticipant:
    phone: str | None  # digits when known
    jid: str
    is_admin: bool = False
    is_super_admin: bool = False


@dataclass(frozen=True, slots=True)
class GroupInfo:
    jid: str
    name: str
    topic: str
    owner: str | None
    participants: tuple[GroupParticipant, ...]
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ParticipantResult:
    phone: str
    ok: bool
    error: str | None = None


# --- the protocol ---------------------------------------------------------


@runtime_checkable
class Driver(Protocol):
    """One device's link to WhatsApp."""

    token: str
    session_path: Path
    # Whether ``send`` uses ``OutgoingMessage.id`` (so a resend with the same id is one message).
    keeps_message_ids: bool

    def is_paired(self) -> bool:
        """True when the session file holds a pairing (reconnect needs no scan)."""

    async def connect(self, method: Method = "qr") -> None:
        """Start connecting; return once the attempt is under way.

        A paired session reconnects and later reports :class:`Connected`; an
        unpaired one reports :class:`Qr` (rotating) or :class:`PairingCode`.
        Raises :class:`ConnectError` when WhatsApp cannot be reached.
        """

    async def disconnect(self) -> None:
        """Close the connection, keep the session. Idempotent."""

    async def logout(self) -> None:
        """Unlink from WhatsApp and delete the session file. Idempotent."""

    async def send_text(self, to: str, text: str) -> SentMessage:
        """Send ``text`` to a JID. Raises NotConnectedError / SendError."""

    async def send(self, to: str, message: OutgoingMessage) -> SentMessage:
        """Send any kind of message to a JID (text may be delegated to :meth:`send_text`).

        Raises NotConnectedError / SendError.
        """

    async def edit(self, chat: str, message_id: str, text: str) -> SentMessage:
        """Replace the text of a message this device sent in ``chat``."""

    async def revoke(self, chat: str, message_id: str) -> None:
        """Delete a message this device sent, for everyone."""

    async def mark_read(self, chat: str, message_ids: list[str], sender: str | None) -> None:
        """Send read receipts for incoming messages (``sender``: their author's JID, in groups)."""

    async def send_presence(self, chat: str, state: PresenceState) -> None:
        """Show composing / recording in ``chat``, or stop (paused)."""

    async def set_typing(self, to: str, on: bool) -> None:
        """Show (or stop showing) "composing" in the chat ``to`` (a JID)."""

    async def create_group(self, name: str, participants: list[str]) -> GroupInfo:
        """Create a group with these participants (JIDs). Raises SendError."""

    async def group_info(self, jid: str) -> GroupInfo:
        """A group's details with its participants. Raises NotFoundError / CheckError."""

    async def update_participants(
        self, jid: str, action: ParticipantAction, participants: list[str]
    ) -> list[ParticipantResult]:
        """Add / remove / promote / demote participants (JIDs); one result per participant, in order."""

    async def invite_link(self, jid: str, revoke: bool = False) -> str:
        """The group's invite link; ``revoke`` resets it first. Raises NotFoundError / RefusedError."""

    async def leave_group(self, jid: str) -> None:
        """Leave a group. Raises NotFoundError."""

    async def download(self, ref: MediaRef) -> bytes:
        """The bytes of an incoming message's media. Raises NotFoundError / CheckError."""

    async def is_on_whatsapp(self, phones: list[str]) -> list[PhoneCheck]:
        """Check phone digits. Raises NotConnectedError / CheckError."""

    async def joined_groups(self) -> list[Group]:
        """Groups the device is in. Raises NotConnectedError / CheckError."""

    def events(self) -> AsyncIterator[DriverEvent]:
        """The stream of events, in the order they happened."""

    async def close(self) -> None:
        """Release everything (threads, files) without emitting events."""


class EventStream:
    """The event queue shared by drivers: emit from the loop or any thread.

    Unbounded on purpose: an event is never dropped; the device's pump is the
    only consumer and drains it continuously. A deque and one wake-up future
    rather than an ``asyncio.Queue``: with one consumer and no bound, the
    queue's waiter bookkeeping is all overhead (every send brings two receipts).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._items: deque[DriverEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._loop_thread = threading.get_ident()

    def emit(self, event: DriverEvent) -> None:
        """Report an event; safe to call from any thread."""
        if threading.get_ident() == self._loop_thread:
            self._push(event)
        else:
            self._loop.call_soon_threadsafe(self._push, event)

    def _push(self, event: DriverEvent) -> None:
        self._items.append(event)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def __aiter__(self) -> AsyncIterator[DriverEvent]:
        items = self._items
        while True:
            while items:
                yield items.popleft()
            self._waiter = waiter = self._loop.create_future()
            await waiter


class SessionDirectory(Protocol):
    """Where a driver whose sessions share one database (neonize on PostgreSQL) learns about them.

    Given to the driver by the composition root, backed by the store: a driver
    never imports the store. ``jid`` is the device's full WhatsApp JID
    (``user:device@server``).
    """

    async def stored_jid(self, token: str) -> str | None:
        """The JID the registry recorded for ``token`` (None: never connected, or logged out)."""
        ...

    async def session_exists(self, jid: str) -> bool:
        """Whether the shared store holds a session for ``jid``."""
        ...

    async def forget_session(self, jid: str) -> None:
        """Delete ``jid``'s session (after a logout)."""
        ...


# What the simulated WhatsApp received (``GET /sandbox/devices/{token}/sent``): id, to, text, when, the rest of
# the record (None for a plain text).
SentRecord = tuple[str, str, str | None, datetime, dict[str, Any] | None]


class SandboxWorld(Protocol):
    """The simulated WhatsApp's state that outlives one node (cluster mode): pairing, what each device sent,
    and every connection it sees, so a device connected on two nodes at once is recorded. Writes are made
    in order, in the background (``drain`` waits for those made so far); ``is_paired`` and ``sent_records``
    answer from what was read last (``refresh`` reads one device again)."""

    def is_paired(self, token: str) -> bool: ...

    async def refresh(self, token: str) -> None: ...

    def sent_records(self, token: str) -> list[SentRecord]:
        """What ``token`` sent, oldest first, as ``refresh`` read it (the newest kept)."""
        ...

    def record_sent(self, token: str, records: list[SentRecord]) -> None:
        """Keep records ``token`` sent (or edited: same id, same place), written with every device's of
        this turn of the loop."""
        ...

    def forget_sent(self, token: str) -> None: ...

    async def drain(self) -> None:
        """Wait until every write made so far has reached the database (or failed)."""
        ...

    def set_paired(self, token: str, paired: bool) -> None: ...

    def opened(self, token: str) -> None: ...

    def closed(self, token: str, why: str) -> None: ...


@dataclass(slots=True)
class DriverOptions:
    """What a driver factory gets besides the token (from Settings)."""

    data_dir: Path
    sandbox_qr_interval_ms: int = 20000
    sandbox_receipt_delay_ms: int = 200
    sandbox_reconnect_ms: int = 500
    sandbox_world: SandboxWorld | None = None  # cluster mode: the sandbox's pairing and connections, shared
    extra: dict[str, object] = field(default_factory=dict)
    # neonize on PostgreSQL: whatsmeow's database string (see gateway.drivers.neonize.sessions.session_dsn)
    # and the registry's answers about it. Both None: one session file per device under data_dir.
    session_db: str | None = None
    sessions: SessionDirectory | None = None

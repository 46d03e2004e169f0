"""A simulated WhatsApp that behaves like the real one at the driver seam.

Used for development, demos, CRM integration tests and the gateway's own
tests (CONTRACT §9). Pairing is kept in the device's session file, a small
SQLite database, so a restart reconnects without a scan; in a cluster it is kept
in the shared :class:`~gateway.drivers.base.SandboxWorld` instead (the device
moves between nodes), which also records every connection, so a device
connected on two nodes at once shows. The control methods
(``scan``, ``incoming``, ``edit_incoming``, ``revoke_incoming``, ``history``,
``drop``, ``unlink``, ``sent``) stand in for the phone and the network.

Every kind of message is "received by WhatsApp" into ``sent()`` with what a
client needs to check it arrived unmangled (the sha256 of media bytes). Groups
are simulated in memory: created groups are listed, participants change.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import sqlite3
import string
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.drivers.base import (
    CheckError,
    Connected,
    ConnectError,
    ContactCard,
    Disconnected,
    DriverEvent,
    DriverOptions,
    EventStream,
    Group,
    GroupInfo,
    GroupParticipant,
    HistoryContact,
    HistoryContacts,
    IncomingMedia,
    IncomingMessage,
    Location,
    LoggedOut,
    MediaRef,
    MediaType,
    MessageEdited,
    MessageRevoked,
    Method,
    NotConnectedError,
    NotFoundError,
    OutgoingMessage,
    PairingCode,
    ParticipantAction,
    ParticipantResult,
    PhoneCheck,
    Poll,
    PresenceState,
    Qr,
    ReactionReceived,
    Receipt,
    ReceiptType,
    RefusedError,
    Replaced,
    ReplyTo,
    SendError,
    SentMessage,
)
from gateway.drivers.sandbox_log import MAX_KEPT, FileSink, SentLog, WorldSink
from gateway.ids import message_id as new_message_id

_CODE_ALPHABET = string.ascii_uppercase + string.digits
RECEIPT_TICK_S = 0.01  # receipts due within one tick of each other arrive together


class SandboxStateError(Exception):
    """A control action that does not fit the device's state (e.g. scan when not pairing)."""


@dataclass(slots=True)
class _Group:
    """A simulated group: ``members`` maps phone digits to (is_admin, is_super_admin)."""

    jid: str
    name: str
    topic: str
    owner: str | None
    members: dict[str, tuple[bool, bool]]
    invite: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _new_qr() -> str:
    return "2@" + secrets.token_urlsafe(48) + "," + secrets.token_urlsafe(32) + ",sandbox"


def _pairing_code() -> str:
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


class SandboxDriver:
    keeps_message_ids = True  # like WhatsApp: a message resent under its id is one message

    def __init__(self, token: str, options: DriverOptions) -> None:
        self.token = token
        self.session_path = options.data_dir / f"{token}.db"
        self._opts = options
        self._world = options.sandbox_world
        self._stream = EventStream()
        self._connected = False
        self._pairing = False
        self._qr_task: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        # Receipts not yet due, oldest first: (due on the loop clock, message id, recipient).
        # The delay is fixed, so each queue stays in due order and one timer serves both.
        self._delivered: deque[tuple[float, str, str]] = deque()
        self._read: deque[tuple[float, str, str]] = deque()
        self._receipt_timer: asyncio.TimerHandle | None = None
        self._receipt_loop: asyncio.AbstractEventLoop | None = None  # the loop _receipt_timer is on
        self._down_until = 0.0
        # What WhatsApp received, oldest first: id, to, text, when, the rest of the record (None for a
        # plain text: the fast path stays a tuple). Kept on disk too: WhatsApp outlives a gateway crash —
        # in a cluster in the shared world, as the device moves between nodes.
        sink = WorldSink(self._world, token) if self._world is not None else None
        self._log = SentLog(sink or FileSink(Path(str(self.session_path) + "-sent.jsonl")))
        self._sent = self._log.entries
        self.typing: deque[tuple[str, bool]] = deque(maxlen=MAX_KEPT)  # composing on/off, newest last
        self.presence: deque[tuple[str, PresenceState]] = deque(maxlen=MAX_KEPT)  # chat, state
        self.reads: deque[tuple[str, tuple[str, ...], str | None]] = deque(maxlen=MAX_KEPT)  # chat, ids, sender
        # Incoming messages the simulated phone delivered, by id: (chat, sender, from_me) — for edits/revokes.
        self._received: dict[str, tuple[str, str | None, bool]] = {}
        self._media: dict[str, bytes] = {}  # incoming media bytes, by MediaRef.data
        self._groups: dict[str, _Group] = {}

    # --- session file -------------------------------------------------------

    def is_paired(self) -> bool:
        if self._world is not None:
            return self._world.is_paired(self.token)
        if not self.session_path.is_file():
            return False
        try:
            with contextlib.closing(sqlite3.connect(self.session_path)) as conn:
                row = conn.execute("SELECT paired FROM pairing LIMIT 1").fetchone()
        except sqlite3.Error:
            return False
        return bool(row and row[0])

    def _write_pairing(self) -> None:
        if self._world is not None:
            self._world.set_paired(self.token, True)
            return
        self.session_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(self.session_path)) as conn, conn:
            conn.execute("CREATE TABLE IF NOT EXISTS pairing (paired INTEGER NOT NULL, paired_at TEXT)")
            conn.execute("DELETE FROM pairing")
            conn.execute("INSERT INTO pairing VALUES (1, ?)", (datetime.now(UTC).isoformat(),))

    def _delete_session(self) -> None:
        self._log.delete()
        if self._world is not None:
            self._world.set_paired(self.token, False)
            return
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(str(self.session_path) + suffix).unlink()

    # --- the seam -------------------------------------------------------------

    def events(self) -> AsyncIterator[DriverEvent]:
        return self._stream.__aiter__()

    async def connect(self, method: Method = "qr") -> None:
        if time.monotonic() < self._down_until:
            raise ConnectError("dial tcp: connect: network is unreachable (sandbox)")
        if self._connected:
            return
        if self.is_paired():
            self._later(0, self._go_online)
            return
        self._pairing = True
        self._stop_qr()
        if method == "code":
            self._stream.emit(PairingCode(_pairing_code()))
        else:
            self._qr_task = asyncio.create_task(self._rotate_qr(), name=f"sandbox-qr-{self.token}")

    async def disconnect(self) -> None:
        self._offline("disconnect")
        self._pairing = False
        self._stop_qr()
        self._cancel_timers()

    async def logout(self) -> None:
        await self.disconnect()
        if self._world is not None:
            self._delete_session()
        else:
            await asyncio.to_thread(self._delete_session)

    async def close(self) -> None:
        await self.disconnect()
        self._log.close()
        if self._world is not None:  # what it sent is in the world before the next node reads it
            await self._world.drain()

    async def send_text(self, to: str, text: str) -> SentMessage:
        self._require_connected()
        return self._received_by_whatsapp(None, to, text, None)

    def _received_by_whatsapp(
        self, chosen_id: str | None, to: str, text: str | None, record: dict[str, Any] | None, receipts: bool = True
    ) -> SentMessage:
        if chosen_id is not None:
            known = self._log.find(chosen_id)
            if known is not None:  # a resend of a message WhatsApp has: still one message
                return SentMessage(chosen_id, known[3])
        msg_id = chosen_id or new_message_id()
        now = datetime.now(UTC)
        self._log.append((msg_id, to, text, now, record))
        if receipts:
            self._schedule_receipts(msg_id, to)
        return SentMessage(msg_id, now)

    async def send(self, to: str, message: OutgoingMessage) -> SentMessage:
        self._require_connected()
        if message.text is not None and message.reply_to is None and not message.mentions:
            return self._received_by_whatsapp(message.id, to, message.text, None)
        record: dict[str, Any] = {"type": message.type}
        text = message.text
        if message.media is not None:
            m = message.media
            try:
                digest, size = await asyncio.to_thread(_hash_file, m.path)
            except OSError as exc:
                raise SendError(f"cannot read the media file: {exc}") from exc
            record["media"] = _drop_none(
                {
                    "type": m.type,
                    "mimetype": m.mimetype,
                    "size": size,
                    "sha256": digest,
                    "filename": m.filename,
                    "voiceNote": m.voice_note or None,
                }
            )
            text = m.caption
        if message.location is not None:
            record["location"] = location_data(message.location)
        if message.contacts:
            record["contacts"] = [contact_data(c) for c in message.contacts]
        if message.reaction is not None:
            record["reaction"] = {"messageId": message.reaction.message_id, "emoji": message.reaction.emoji}
        if message.poll is not None:
            record["poll"] = poll_data(message.poll)
        if message.reply_to is not None:
            record["replyTo"] = {"messageId": message.reply_to.id}
        if message.mentions:
            record["mentions"] = [m.partition("@")[0] for m in message.mentions]
        self._require_connected()  # hashing yielded: the device may have gone meanwhile
        # WhatsApp sends no receipts for reactions
        return self._received_by_whatsapp(message.id, to, text, record, receipts=message.reaction is None)

    async def edit(self, chat: str, message_id: str, text: str) -> SentMessage:
        self._require_connected()
        now = datetime.now(UTC)
        for i, (msg_id, to, _, at, record) in enumerate(self._sent):
            if msg_id == message_id:
                self._log.replace(i, (msg_id, to, text, at, {**(record or {"type": "text"}), "editedAt": _iso(now)}))
                break
        return SentMessage(new_message_id(), now)

    async def revoke(self, chat: str, message_id: str) -> None:
        self._require_connected()
        for i, (msg_id, to, text, at, record) in enumerate(self._sent):
            if msg_id == message_id:
                self._log.replace(i, (msg_id, to, text, at, {**(record or {"type": "text"}), "revoked": True}))
                break

    async def mark_read(self, chat: str, message_ids: list[str], sender: str | None) -> None:
        self._require_connected()
        self.reads.append((chat, tuple(message_ids), sender))

    async def send_presence(self, chat: str, state: PresenceState) -> None:
        self._require_connected()
        self.presence.append((chat, state))

    def _schedule_receipts(self, msg_id: str, to: str) -> None:
        # While a tick is pending its loop is the running one: not looked up per send (on Python 3.11
        # asyncio.get_running_loop() makes a getpid() system call each time).
        timer = self._receipt_timer
        loop = (
            self._receipt_loop if timer is not None and self._receipt_loop is not None else asyncio.get_running_loop()
        )
        delay = self._opts.sandbox_receipt_delay_ms / 1000
        at = loop.time()
        self._delivered.append((at + delay, msg_id, to))
        self._read.append((at + 2 * delay, msg_id, to))
        if timer is None:
            self._receipt_loop = loop
            self._receipt_timer = loop.call_at(at + delay, self._emit_due_receipts)

    async def set_typing(self, to: str, on: bool) -> None:
        self._require_connected()
        self.typing.append((to, on))

    async def is_on_whatsapp(self, phones: list[str]) -> list[PhoneCheck]:
        self._require_connected()
        out = []
        for phone in phones:
            if not phone.isdigit():
                raise CheckError(f"{phone!r} is not phone digits")
            on = _on_whatsapp(phone)
            out.append(PhoneCheck(phone, on, f"{phone}@s.whatsapp.net" if on else None, None))
        return out

    async def joined_groups(self) -> list[Group]:
        self._require_connected()
        out = []
        for g in self._group_table().values():
            admin, superadmin = g.members.get(self.token, (False, False))
            out.append(Group(g.jid, g.name, g.topic, g.owner, len(g.members), admin or superadmin, superadmin))
        return out

    async def create_group(self, name: str, participants: list[str]) -> GroupInfo:
        self._require_connected()
        if not name.strip():
            raise SendError("a group needs a name")
        groups = self._group_table()
        jid = f"120363{secrets.randbelow(10**12):012d}@g.us"
        members = {self.token: (True, True)}
        for p in participants:
            phone = _digits(p)
            if _on_whatsapp(phone):
                members.setdefault(phone, (False, False))
        groups[jid] = _Group(jid, name, "", f"{self.token}@s.whatsapp.net", members)
        return self._info(groups[jid])

    async def group_info(self, jid: str) -> GroupInfo:
        self._require_connected()
        return self._info(self._group(jid))

    async def update_participants(
        self, jid: str, action: ParticipantAction, participants: list[str]
    ) -> list[ParticipantResult]:
        self._require_connected()
        g = self._group(jid)
        if not any(g.members.get(self.token, (False, False))):
            raise RefusedError("this device is not an admin of the group")
        results = []
        for p in participants:
            phone = _digits(p)
            error: str | None = None
            if action == "add":
                if not _on_whatsapp(phone):
                    error = "not on WhatsApp"
                elif phone in g.members:
                    error = "already a participant"
                else:
                    g.members[phone] = (False, False)
            elif phone not in g.members:
                error = "not a participant"
            elif phone == self.token:
                error = "cannot change this device's own role"
            elif action == "remove":
                del g.members[phone]
            else:
                g.members[phone] = (action == "promote", False)
            results.append(ParticipantResult(phone, error is None, error))
        return results

    async def invite_link(self, jid: str, revoke: bool = False) -> str:
        self._require_connected()
        g = self._group(jid)
        if not any(g.members.get(self.token, (False, False))):
            raise RefusedError("this device is not an admin of the group")
        if revoke:
            g.invite = secrets.token_urlsafe(16)
        return f"https://chat.whatsapp.com/{g.invite}"

    async def leave_group(self, jid: str) -> None:
        self._require_connected()
        self._group(jid)
        del self._groups[jid]

    async def download(self, ref: MediaRef) -> bytes:
        data = self._media.get(ref.data) if ref.driver == "sandbox" else None
        if data is None:
            raise NotFoundError("the simulated WhatsApp no longer has this media")
        return data

    def _group_table(self) -> dict[str, _Group]:
        """The device's groups; the first call seeds the two every sandbox device starts in."""
        if not self._groups:
            me = f"{self.token}@s.whatsapp.net"
            sales = {self.token: (True, True), "60198765432": (False, False), "60171222333": (False, False)}
            support = {f"6012345{i:04d}": (i == 1, i == 1) for i in range(1, 12)}
            support[self.token] = (False, False)
            self._groups = {
                "120363000000000001@g.us": _Group(
                    "120363000000000001@g.us", "Sandbox Sales", "Leads and follow-ups", me, sales
                ),
                "120363000000000002@g.us": _Group("120363000000000002@g.us", "Sandbox Support", "", None, support),
            }
        return self._groups

    def _group(self, jid: str) -> _Group:
        g = self._group_table().get(jid)
        if g is None:
            raise NotFoundError(f"no group {jid} (or this device is not in it)")
        return g

    @staticmethod
    def _info(g: _Group) -> GroupInfo:
        members = tuple(
            GroupParticipant(phone, f"{phone}@s.whatsapp.net", admin or superadmin, superadmin)
            for phone, (admin, superadmin) in g.members.items()
        )
        return GroupInfo(g.jid, g.name, g.topic, g.owner, members, g.created_at)

    # --- the simulated phone and network ---------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def pairing(self) -> bool:
        return self._pairing

    def sent(self) -> list[dict[str, Any]]:
        """What WhatsApp received, oldest first (CONTRACT §11's sandbox ``/sent`` shape)."""
        out: list[dict[str, Any]] = []
        for msg_id, to, text, at, record in self._sent:
            item: dict[str, Any] = {"id": msg_id, "to": to, "type": "text"}
            if record:
                item.update(record)
            if text is not None:
                item["text"] = text
            item["timestamp"] = _iso(at)
            out.append(item)
        return out

    def scan(self) -> None:
        if not self._pairing:
            raise SandboxStateError("the device is not pairing")
        self._write_pairing()
        self._stop_qr()
        self._go_online()

    def incoming(
        self,
        sender: str | None,
        name: str | None,
        text: str | None,
        *,
        sender_lid: str | None = None,
        from_me: bool = False,
        chat: str | None = None,
        media: SandboxMedia | None = None,
        location: Location | None = None,
        contacts: tuple[ContactCard, ...] = (),
        poll: Poll | None = None,
        reply_to: str | None = None,
        mentions: tuple[str, ...] = (),
    ) -> IncomingMessage:
        """A message arrives (or, ``from_me``, is typed on the phone: ``sender`` then names the partner).

        ``sender_lid`` (``<digits>@lid``) stands for a sender WhatsApp gives only
        as a LID that cannot be resolved: ``sender`` is then None.
        """
        self._require_connected()
        the_chat = chat or (f"{sender}@s.whatsapp.net" if sender else (sender_lid or ""))
        incoming_media = None
        if media is not None:
            key = secrets.token_hex(16)
            self._media[key] = media.data
            _trim(self._media)
            incoming_media = IncomingMedia(
                media.type, media.mimetype, len(media.data), MediaRef("sandbox", key), media.filename, media.voice_note
            )
        kind = (
            incoming_media.type
            if incoming_media
            else "location"
            if location
            else "contacts"
            if contacts
            else "poll"
            if poll
            else "text"
        )
        msg = IncomingMessage(
            id=new_message_id(),
            sender=self.token if from_me else (sender or None),
            sender_name=name,
            chat=the_chat,
            is_group=the_chat.endswith("@g.us"),
            type=kind,
            text=text,
            timestamp=datetime.now(UTC),
            sender_lid=None if from_me else sender_lid,
            from_me=from_me,
            media=incoming_media,
            location=location,
            contacts=contacts,
            poll=poll,
            reply_to=self._quoted(reply_to) if reply_to else None,
            mentions=mentions,
        )
        self._received[msg.id] = (msg.chat, msg.sender, from_me)
        _trim(self._received)
        self._stream.emit(msg)
        return msg

    def _quoted(self, message_id: str) -> ReplyTo:
        """A reply's target: its author is this device when it sent it, else whoever the phone got it from."""
        if any(sent[0] == message_id for sent in self._sent):
            return ReplyTo(message_id, self.token)
        found = self._received.get(message_id)
        return ReplyTo(message_id, found[1] if found else None)

    def react(self, sender: str, message_id: str, emoji: str, chat: str | None = None) -> ReactionReceived:
        """Someone reacts to a message (any id: usually one this device sent)."""
        self._require_connected()
        ev = ReactionReceived(message_id, chat or f"{sender}@s.whatsapp.net", sender, emoji, datetime.now(UTC))
        self._stream.emit(ev)
        return ev

    def edit_incoming(self, message_id: str, text: str) -> MessageEdited:
        """The author of a message the phone received (or typed) edits it."""
        chat, sender, from_me = self._received_message(message_id)
        ev = MessageEdited(message_id, chat, sender, text, datetime.now(UTC), from_me)
        self._stream.emit(ev)
        return ev

    def revoke_incoming(self, message_id: str) -> MessageRevoked:
        """The author of a message deletes it for everyone."""
        chat, sender, from_me = self._received_message(message_id)
        ev = MessageRevoked(message_id, chat, sender, datetime.now(UTC), from_me)
        self._stream.emit(ev)
        return ev

    def _received_message(self, message_id: str) -> tuple[str, str | None, bool]:
        self._require_connected()
        found = self._received.get(message_id)
        if found is None:
            raise SandboxStateError(f"no incoming message {message_id} on this device")
        return found

    def history(self, contacts: list[tuple[str, str | None]]) -> None:
        self._require_connected()
        self._stream.emit(HistoryContacts(tuple(HistoryContact(p, n) for p, n in contacts)))

    def drop(self) -> None:
        self._require_connected()
        self._offline("drop")
        self._cancel_timers()
        # The network stays away for a while; the gateway's reconnect backoff
        # brings the device back within SANDBOX_RECONNECT_MS.
        self._down_until = time.monotonic() + self._opts.sandbox_reconnect_ms * 0.3 / 1000
        self._stream.emit(Disconnected("Connection lost"))

    def replace(self) -> None:
        """Another client opens this session (WhatsApp's StreamReplaced): this connection is closed."""
        self._require_connected()
        self._offline("replaced")
        self._cancel_timers()
        self._stream.emit(Replaced())

    def unlink(self) -> None:
        if not self._connected:
            raise SandboxStateError("the device is not connected")
        self._offline("unlinked")
        self._cancel_timers()
        self._delete_session()
        self._stream.emit(LoggedOut("Logged out"))

    # --- internals -------------------------------------------------------------

    def _require_connected(self) -> None:
        if not self._connected:
            raise NotConnectedError("the device is not connected")

    def _offline(self, why: str) -> None:
        if self._connected and self._world is not None:
            self._world.closed(self.token, why)
        self._connected = False

    def _go_online(self) -> None:
        self._pairing = False
        if not self._connected and self._world is not None:
            self._world.opened(self.token)
        self._connected = True
        self._stream.emit(
            Connected(
                pushname=f"Sandbox {self.token[-4:]}",
                platform="android",
                phone=self.token,
                jid=f"{self.token}:1@s.whatsapp.net",  # as a linked companion device's JID looks
            )
        )

    async def _rotate_qr(self) -> None:
        interval = self._opts.sandbox_qr_interval_ms / 1000
        while self._pairing:
            self._stream.emit(Qr(_new_qr()))
            await asyncio.sleep(interval)

    def _stop_qr(self) -> None:
        if self._qr_task is not None:
            self._qr_task.cancel()
            self._qr_task = None

    def _emit_due_receipts(self) -> None:
        """Emit every receipt that is due: per kind (every due delivered before any due read, so a
        message's delivered always comes before its read), one event per chat with all its ids, as
        WhatsApp batches what arrived together. Then wait for the next one, at most
        :data:`RECEIPT_TICK_S` a tick: one timer per device, not two per send, and a busy device's
        receipts come in batches rather than one by one."""
        self._receipt_timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        stamp = datetime.now(UTC)
        kinds: tuple[tuple[ReceiptType, deque[tuple[float, str, str]]], ...] = (
            ("delivered", self._delivered),
            ("read", self._read),
        )
        for kind, queue in kinds:
            by_chat: dict[str, list[str]] = {}
            while queue and queue[0][0] <= now:
                _, msg_id, to = queue.popleft()
                by_chat.setdefault(to, []).append(msg_id)
            for to, ids in by_chat.items():
                self._stream.emit(Receipt(kind, tuple(ids), to, stamp))
        pending = [q[0][0] for _, q in kinds if q]
        if pending:
            self._receipt_loop = loop
            self._receipt_timer = loop.call_at(max(min(pending), now + RECEIPT_TICK_S), self._emit_due_receipts)

    def _later(self, delay: float, fn: object, *args: object) -> None:
        loop = asyncio.get_running_loop()

        def run() -> None:
            self._timers.discard(handle)
            fn(*args)  # type: ignore[operator]

        handle = loop.call_later(delay, run)
        self._timers.add(handle)

    def _cancel_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        if self._receipt_timer is not None:
            self._receipt_timer.cancel()
            self._receipt_timer = None
        self._delivered.clear()
        self._read.clear()


@dataclass(frozen=True, slots=True)
class SandboxMedia:
    """Media the simulated phone sends: its bytes and what it says they are."""

    type: MediaType
    data: bytes
    mimetype: str
    filename: str | None = None
    voice_note: bool = False


def location_data(loc: Location) -> dict[str, Any]:
    return _drop_none({"latitude": loc.latitude, "longitude": loc.longitude, "name": loc.name, "address": loc.address})


def contact_data(c: ContactCard) -> dict[str, Any]:
    return _drop_none({"name": c.name, "phones": list(c.phones), "email": c.email, "organization": c.organization})


def poll_data(p: Poll) -> dict[str, Any]:
    return {"name": p.name, "options": list(p.options), "selectableCount": p.selectable_count}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _digits(value: str) -> str:
    return value.partition("@")[0].split(":", 1)[0]


def _on_whatsapp(phone: str) -> bool:
    """The sandbox's rule (CONTRACT §9): every number whose last digit is not 0."""
    return phone.isdigit() and not phone.endswith("0")


def _trim(d: dict[str, Any]) -> None:
    """Keep the newest MAX_KEPT entries (dicts keep insertion order)."""
    while len(d) > MAX_KEPT:
        del d[next(iter(d))]


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")

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
    └── CheckError         the on-WhatsApp / groups query failed
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

Method = Literal["qr", "code"]
ReceiptType = Literal["delivered", "read", "played"]


class DriverError(Exception):
    """Base of everything a driver raises on purpose."""


class ConnectError(DriverError):
    """WhatsApp could not be reached."""


class NotConnectedError(DriverError):
    """The call needs a live connection."""


class SendError(DriverError):
    """The message was not sent."""


class CheckError(DriverError):
    """A query to WhatsApp (on-WhatsApp check, groups) failed."""


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


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection was lost (not a logout). ``reason`` is shown to users."""

    reason: str = "Disconnected"


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """The phone unlinked this device; its session is gone."""

    reason: str = "Logged out"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message received by the device.

    ``sender`` is the sender's phone digits (never a LID: drivers resolve LIDs
    before reporting), ``chat`` the chat's JID.
    """

    id: str
    sender: str
    sender_name: str | None
    chat: str
    is_group: bool
    type: str
    text: str | None
    timestamp: datetime


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


DriverEvent = Qr | PairingCode | Connected | Disconnected | LoggedOut | IncomingMessage | Receipt | HistoryContacts


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


# --- the protocol ---------------------------------------------------------


@runtime_checkable
class Driver(Protocol):
    """One device's link to WhatsApp."""

    token: str
    session_path: Path

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

    async def set_typing(self, to: str, on: bool) -> None:
        """Show (or stop showing) "composing" in the chat ``to`` (a JID)."""

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


@dataclass(slots=True)
class DriverOptions:
    """What a driver factory gets besides the token (from Settings)."""

    data_dir: Path
    sandbox_qr_interval_ms: int = 20000
    sandbox_receipt_delay_ms: int = 200
    sandbox_reconnect_ms: int = 500
    extra: dict[str, object] = field(default_factory=dict)

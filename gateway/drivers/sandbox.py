"""A simulated WhatsApp that behaves like the real one at the driver seam.

Used for development, demos, CRM integration tests and the gateway's own
tests (CONTRACT §9). Pairing is kept in the device's session file, a small
SQLite database, so a restart reconnects without a scan. The control methods
(``scan``, ``incoming``, ``history``, ``drop``, ``unlink``, ``sent``) stand in
for the phone and the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import string
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from gateway.drivers.base import (
    CheckError,
    Connected,
    ConnectError,
    Disconnected,
    DriverEvent,
    DriverOptions,
    EventStream,
    Group,
    HistoryContact,
    HistoryContacts,
    IncomingMessage,
    LoggedOut,
    Method,
    NotConnectedError,
    PairingCode,
    PhoneCheck,
    Qr,
    Receipt,
    SentMessage,
)
from gateway.ids import message_id

_CODE_ALPHABET = string.ascii_uppercase + string.digits


class SandboxStateError(Exception):
    """A control action that does not fit the device's state (e.g. scan when not pairing)."""


def _new_qr() -> str:
    return "2@" + secrets.token_urlsafe(48) + "," + secrets.token_urlsafe(32) + ",sandbox"


def _pairing_code() -> str:
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


class SandboxDriver:
    def __init__(self, token: str, options: DriverOptions) -> None:
        self.token = token
        self.session_path = options.data_dir / f"{token}.db"
        self._opts = options
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
        self._down_until = 0.0
        self._sent: deque[tuple[str, str, str, datetime]] = deque(maxlen=1000)  # id, to, text, when
        self.typing: deque[tuple[str, bool]] = deque(maxlen=1000)  # composing on/off, newest last

    # --- session file -------------------------------------------------------

    def is_paired(self) -> bool:
        if not self.session_path.is_file():
            return False
        try:
            with contextlib.closing(sqlite3.connect(self.session_path)) as conn:
                row = conn.execute("SELECT paired FROM pairing LIMIT 1").fetchone()
        except sqlite3.Error:
            return False
        return bool(row and row[0])

    def _write_pairing(self) -> None:
        self.session_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(self.session_path)) as conn, conn:
            conn.execute("CREATE TABLE IF NOT EXISTS pairing (paired INTEGER NOT NULL, paired_at TEXT)")
            conn.execute("DELETE FROM pairing")
            conn.execute("INSERT INTO pairing VALUES (1, ?)", (datetime.now(UTC).isoformat(),))

    def _delete_session(self) -> None:
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
        self._connected = False
        self._pairing = False
        self._stop_qr()
        self._cancel_timers()

    async def logout(self) -> None:
        await self.disconnect()
        await asyncio.to_thread(self._delete_session)

    async def close(self) -> None:
        await self.disconnect()

    async def send_text(self, to: str, text: str) -> SentMessage:
        self._require_connected()
        msg_id = message_id()
        now = datetime.now(UTC)
        self._sent.append((msg_id, to, text, now))
        loop = asyncio.get_running_loop()
        delay = self._opts.sandbox_receipt_delay_ms / 1000
        at = loop.time()
        self._delivered.append((at + delay, msg_id, to))
        self._read.append((at + 2 * delay, msg_id, to))
        if self._receipt_timer is None:
            self._receipt_timer = loop.call_at(at + delay, self._emit_due_receipts)
        return SentMessage(msg_id, now)

    async def set_typing(self, to: str, on: bool) -> None:
        self._require_connected()
        self.typing.append((to, on))

    async def is_on_whatsapp(self, phones: list[str]) -> list[PhoneCheck]:
        self._require_connected()
        out = []
        for phone in phones:
            if not phone.isdigit():
                raise CheckError(f"{phone!r} is not phone digits")
            on = not phone.endswith("0")
            out.append(PhoneCheck(phone, on, f"{phone}@s.whatsapp.net" if on else None, None))
        return out

    async def joined_groups(self) -> list[Group]:
        self._require_connected()
        owner = f"{self.token}@s.whatsapp.net"
        return [
            Group("120363000000000001@g.us", "Sandbox Sales", "Leads and follow-ups", owner, 3, True, True),
            Group("120363000000000002@g.us", "Sandbox Support", "", None, 12, False, False),
        ]

    # --- the simulated phone and network ---------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def pairing(self) -> bool:
        return self._pairing

    def sent(self) -> list[dict[str, str]]:
        return [{"id": i, "to": to, "text": text, "timestamp": _iso(at)} for i, to, text, at in self._sent]

    def scan(self) -> None:
        if not self._pairing:
            raise SandboxStateError("the device is not pairing")
        self._write_pairing()
        self._stop_qr()
        self._go_online()

    def incoming(self, sender: str, name: str | None, text: str) -> IncomingMessage:
        self._require_connected()
        msg = IncomingMessage(
            id=message_id(),
            sender=sender,
            sender_name=name,
            chat=f"{sender}@s.whatsapp.net",
            is_group=False,
            type="text",
            text=text,
            timestamp=datetime.now(UTC),
        )
        self._stream.emit(msg)
        return msg

    def history(self, contacts: list[tuple[str, str | None]]) -> None:
        self._require_connected()
        self._stream.emit(HistoryContacts(tuple(HistoryContact(p, n) for p, n in contacts)))

    def drop(self) -> None:
        self._require_connected()
        self._connected = False
        self._cancel_timers()
        # The network stays away for a while; the gateway's reconnect backoff
        # brings the device back within SANDBOX_RECONNECT_MS.
        self._down_until = time.monotonic() + self._opts.sandbox_reconnect_ms * 0.3 / 1000
        self._stream.emit(Disconnected("Connection lost"))

    def unlink(self) -> None:
        if not self._connected:
            raise SandboxStateError("the device is not connected")
        self._connected = False
        self._cancel_timers()
        self._delete_session()
        self._stream.emit(LoggedOut("Logged out"))

    # --- internals -------------------------------------------------------------

    def _require_connected(self) -> None:
        if not self._connected:
            raise NotConnectedError("the device is not connected")

    def _go_online(self) -> None:
        self._pairing = False
        self._connected = True
        self._stream.emit(Connected(pushname=f"Sandbox {self.token[-4:]}", platform="android", phone=self.token))

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
        """Emit every receipt that is due, in due order (a message's delivered before its read),
        one event per message; then wait for the next one. One timer per device, not two per send."""
        self._receipt_timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        delivered, read = self._delivered, self._read
        stamp = datetime.now(UTC)
        while True:
            if delivered and delivered[0][0] <= now and (not read or delivered[0][0] <= read[0][0]):
                _, msg_id, to = delivered.popleft()
                self._stream.emit(Receipt("delivered", (msg_id,), to, stamp))
            elif read and read[0][0] <= now:
                _, msg_id, to = read.popleft()
                self._stream.emit(Receipt("read", (msg_id,), to, stamp))
            else:
                break
        pending = [q[0][0] for q in (delivered, read) if q]
        if pending:
            self._receipt_timer = loop.call_at(min(pending), self._emit_due_receipts)

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


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")

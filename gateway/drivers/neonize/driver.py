"""The neonize driver: real WhatsApp through neonize (whatsmeow, in Go, over ctypes).

How it runs
-----------
neonize exposes whatsmeow as blocking C calls. ``Neonize()`` — the call that
connects — keeps its calling thread for the whole life of the connection, and
every other call (send, on-WhatsApp check, …) blocks until WhatsApp answers.
neonize's own async client sends all of them through ``asyncio.to_thread``,
i.e. the loop's default executor (6 threads on 2 cores), which starves after
a handful of devices. So this driver uses neonize's *sync* client and owns
its threads:

* one dedicated daemon thread per connection attempt runs ``Neonize()``;
* a small per-device pool of daemon threads (started lazily, default 4) runs
  the short calls, so one slow device cannot queue another device's sends;
* disconnect/stop run on their own one-off daemon thread, because a stop can
  block until an in-flight dial gives up (up to a minute behind a dead proxy).

Daemon threads never hold up interpreter exit, so SIGTERM is not delayed by a
connection that is still dialing.

Go-side maps
------------
goneonize keeps its clients in plain Go maps without a lock. Concurrent
*writes* crash the whole process, so the writers — the start of ``Neonize()``
and ``Stop()`` — are serialized by :data:`~gateway.drivers.neonize.threads.GO_MAP_LOCK`. ``Neonize()`` writes
only while setting up, before it dials: its thread takes the lock and the lock
is handed back at the first sign of life (a QR, an event, the call returning)
or after :data:`~gateway.drivers.neonize.threads.SETUP_GRACE_S` at the latest. Every attempt gets its own Go
id (``<token>.<n>``), so a stale attempt that is still dialing never blocks
or collides with the next one. Some goneonize calls dereference the client
without a nil check (``GetMe``, ``GetPNFromLID``) and crash the process when
called too early; they are only made while the device is connected.

Reconnects
----------
whatsmeow reconnects on its own after a dropped connection; the gateway also
reconnects (with its own backoff) when it sees :class:`Disconnected`. Two
reconnect loops would fight over one session, so on a remote disconnect this
driver reports :class:`Disconnected` and stops the Go client (``Stop`` sets
whatsmeow's "expected disconnect", which cancels its auto-reconnect); the next
:meth:`NeonizeDriver.connect` starts a fresh one.

Sessions
--------
By default each device has its own SQLite session file (``DATA_DIR/<token>.db``)
holding one whatsmeow device, which ``Neonize()`` resumes as "the first
device". With ``DriverOptions.session_db`` (a PostgreSQL URL, see
:mod:`~gateway.drivers.neonize.sessions`) every device shares one database,
and "the first device" would be anyone's: the driver passes the device's JID
(from the registry through ``DriverOptions.sessions``, or learnt from
``get_me()`` at connect) or, with none, asks for a new blank device to pair.
A JID whatsmeow does not hold panics in Go, so its row is checked first and a
missing one is reported as :class:`LoggedOut`.

Each ``Neonize()`` call opens the session's store and goneonize never
closes it (one file descriptor and ~0.25 MiB per call; on PostgreSQL one
connection, closed by the server after ``idle_session_timeout``). So before handing a
connect to Go, the driver dials WhatsApp (or the proxy) from Python: while
the network is down, retries fail there and leak nothing.

Options (``DriverOptions.extra``)
---------------------------------
``neonize_connect_timeout_s`` (float, default 8): how long :meth:`connect`
waits for the first QR / pairing code / ``Connected`` before giving up.
``neonize_call_threads`` (int, default 4): size of the per-device call pool.
``neonize_proxy`` (str, optional): ``http://`` or ``socks5://`` proxy for the
WhatsApp connection (prefer http: whatsmeow cannot abandon a hung socks5 dial).
``neonize_preflight`` (bool, default true): dial WhatsApp from Python before
handing a connect to Go (see :meth:`NeonizeDriver._probe`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import logging
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from gateway.drivers.base import (
    CheckError,
    ConnectError,
    Disconnected,
    DriverError,
    DriverEvent,
    DriverOptions,
    EventStream,
    Group,
    GroupInfo,
    LoggedOut,
    MediaRef,
    Method,
    NotConnectedError,
    NotFoundError,
    OutgoingMedia,
    OutgoingMessage,
    PairingCode,
    ParticipantAction,
    ParticipantResult,
    PhoneCheck,
    PresenceState,
    Qr,
    RefusedError,
    Replaced,
    SendError,
    SentMessage,
)
from gateway.drivers.neonize.incoming import media_message
from gateway.drivers.neonize.media import build_media_message, upload_kind
from gateway.drivers.neonize.outgoing import build_edit, build_message, build_revoke, context_info
from gateway.drivers.neonize.patches import (
    INT_TO_EVENT,
    ChatPresence,
    ChatPresenceMedia,
    ClientName,
    ClientType,
    DeviceProps,
    NewClient,
    ParticipantChange,
    ProxySettings,
    ReceiptType,
    func_callback_bytes,
    func_callback_bytes2,
    func_string,
    gocode,
    log_whatsmeow,
    nz,
    wa,
)
from gateway.drivers.neonize.sessions import is_postgres
from gateway.drivers.neonize.threads import GO_MAP_LOCK, SETUP_GRACE_S, STOP_WAIT_S, DaemonPool, SetupLease
from gateway.drivers.neonize.translate import (
    PN_SERVERS,
    map_error,
    parse_device_jid,
    parse_jid,
    participant_results,
    phone_checks,
    to_datetime,
    translate_connected,
    translate_group,
    translate_group_info,
    translate_history,
    translate_message,
    translate_receipt,
)

__all__ = ["NeonizeDriver"]

log = logging.getLogger("gateway.drivers.neonize")

P = ParamSpec("P")
T = TypeVar("T")

_WHATSAPP_HOST = "web.whatsapp.com"

# Event codes handed to goneonize (see neonize.events.EVENT_TO_INT). QR codes
# arrive through the QR callback instead: subscribing to them as events would
# deliver them only after pairing has finished.
_SUBSCRIBED_EVENTS = bytes([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 17, 18])


@dataclass(eq=False)
class _Attempt:
    """One ``Neonize()`` run: its Go id, its callbacks and how far it got."""

    uuid: bytes
    method: Method
    started: asyncio.Future[None]  # set once the thread holds the set-up lease and calls Go
    ready: asyncio.Future[str | None]  # None once under way, else the error
    ended: asyncio.Future[None]  # set when Neonize() has returned
    jid: str | None = None  # the session resumed (None: SQLite's one device per file, or a new one to pair)
    lease: SetupLease = field(default_factory=SetupLease)
    refs: tuple[Any, ...] = ()  # ctypes callbacks: must outlive every call Go makes into them
    under_way: bool = False
    code_requested: bool = False


_live_drivers: weakref.WeakSet[NeonizeDriver] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    """Last resort for drivers nobody closed: stop their Go clients so Go stops calling into Python.

    Bounded to one second in all: a stop stuck behind a hung dial is left to its daemon thread.
    """
    threads = [thread for driver in list(_live_drivers) for thread in driver._stop_go_all()]
    deadline = time.monotonic() + 1.0
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _whatsmeow_log_level() -> bytes:
    level = logging.getLogger("whatsmeow").getEffectiveLevel()
    if level <= logging.DEBUG:
        return b"DEBUG"
    if level <= logging.INFO:
        return b"INFO"
    return b"WARN" if level <= logging.WARNING else b"ERROR"


def _enum_name(enum: Any, value: int, default: str) -> str:
    try:
        return str(enum.Name(value)) if value else default
    except ValueError:
        return str(value)


def _group_jid(jid: str) -> nz.JID:
    if not jid.endswith("@g.us"):
        raise NotFoundError(f"not a group JID: {jid!r}")
    return parse_jid(jid)


def group_error(exc: BaseException) -> DriverError:
    """whatsmeow's group errors (``item-not-found``, ``forbidden``, ``not-authorized``) as the seam's."""
    text = str(exc).lower()
    if "item-not-found" in text or "404" in text or "not found" in text:
        return NotFoundError(str(exc))
    if "forbidden" in text or "not-authorized" in text or "401" in text or "403" in text:
        return RefusedError(str(exc))
    return map_error(exc, CheckError)


def _read_is_paired(path: Path) -> bool:
    if not path.exists():
        return False
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as db:
            return db.execute("SELECT 1 FROM whatsmeow_device LIMIT 1").fetchone() is not None
    except sqlite3.Error as exc:  # no table yet (never paired), or a locked / broken file
        if "no such table" not in str(exc):
            log.warning("neonize: cannot read session %s: %s", path, exc)
        return False


# --- the driver ------------------------------------------------------------------


class NeonizeDriver:
    """One device linked to real WhatsApp through neonize."""

    # neonize 0.5.2's SendMessage takes no SendRequestExtra: whatsmeow picks every id itself.
    keeps_message_ids = False

    def __init__(self, token: str, options: DriverOptions, jid: str | None = None) -> None:
        self.token = token
        self.session_path: Path = options.data_dir / f"{token}.db"
        # Where whatsmeow keeps the session: this device's own SQLite file (the default), or the shared
        # PostgreSQL database, where the device is selected by its JID (never "the first row").
        self._shared = options.session_db is not None
        if options.session_db is not None:
            if not is_postgres(options.session_db):
                raise ValueError("session_db must be a postgresql:// URL (see neonize.sessions.session_dsn)")
            if options.sessions is None:
                raise ValueError("a shared session database needs the registry's answers (options.sessions)")
        self._db = options.session_db if options.session_db is not None else str(self.session_path)
        self._sessions = options.sessions
        self._jid = jid if self._shared else None  # the session to resume; None: pair a new device
        extra = options.extra  # values may be typed, or strings straight from the environment
        self._connect_timeout = float(str(extra.get("neonize_connect_timeout_s", 8.0)))
        proxy = extra.get("neonize_proxy")
        self._proxy = str(proxy) if proxy else None
        self._preflight = str(extra.get("neonize_preflight", True)).lower() not in ("0", "false", "no", "off")
        threads = int(str(extra.get("neonize_call_threads", 4)))
        self._pool = DaemonPool(threads, f"neonize-call-{token}")
        # neonize's sync client, used for its short calls only (connecting is
        # done here). Its finalizer would call Stop() outside GO_MAP_LOCK; this
        # driver stops its Go clients itself.
        self._client = NewClient(self._db, uuid=token)
        self._client._stop_finalizer.detach()
        self._lock = threading.Lock()  # guards the state below; never held across Stop()
        self._generation = 0
        self._attempt: _Attempt | None = None  # the attempt whose events are reported
        self._running: set[_Attempt] = set()  # attempts whose thread is still inside Go
        self._go_ids: set[bytes] = set()  # Go ids that may still sit in goneonize's maps
        self._connected = False
        self._own_users: tuple[str, ...] = ()
        self._closed = False
        self._connect_lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream: EventStream | None = None
        with contextlib.suppress(RuntimeError):  # no running loop: bound on first use
            self._bind_loop()
        _live_drivers.add(self)

    def __repr__(self) -> str:
        return f"NeonizeDriver({self.token!r}, connected={self._connected})"

    # -- the Driver protocol -------------------------------------------------

    def is_paired(self) -> bool:
        if self._shared:
            return self._jid is not None
        return _read_is_paired(self.session_path)

    def events(self) -> AsyncIterator[DriverEvent]:
        return aiter(self._bind_loop())

    async def connect(self, method: Method = "qr") -> None:
        """Start connecting; return at the first QR, pairing code or ``Connected``.

        Raises :class:`ConnectError` with the dial error when WhatsApp cannot
        be reached (found by the pre-flight dial, or returned by whatsmeow),
        with whatsmeow's error when the attempt fails later, or when nothing
        arrives within the connect timeout. A pairing code is only requested
        for an unpaired session: PairPhone would unlink a paired one.
        """
        self._bind_loop()
        async with self._connect_lock:
            if self._closed:
                raise ConnectError("driver is closed")
            current = self._attempt
            if current is not None and (self._connected or (current.under_way and current.method == method)):
                return
            if current is not None:
                self._retire(current)
            if self._preflight:
                host, port = self._dial_target()
                try:
                    error = await asyncio.wait_for(self._call(self._probe), self._connect_timeout)
                except TimeoutError:
                    error = f"failed to dial {host}:{port}: timed out"
                except NotConnectedError as exc:  # closed meanwhile
                    raise ConnectError(str(exc)) from exc
                if error is not None:
                    raise ConnectError(error)
            if self._shared and not await self._select_session():
                return  # the session is gone: LoggedOut was reported
            attempt = self._start_attempt("code" if method == "code" and not self.is_paired() else "qr")
            try:
                error = await self._wait_under_way(attempt)
            except asyncio.CancelledError:  # e.g. the caller's own timeout: do not leave Go running
                self._retire(attempt)
                raise
            if error is not None:
                raise ConnectError(error)

    async def _select_session(self) -> bool:
        """Shared store: which session to resume, checked before Go sees it. False when it is gone.

        The registry's JID wins (another node may have paired the device); one
        learnt here from ``get_me()`` stands in until the registry has it. A
        JID whatsmeow does not hold would reach whatsmeow as a nil device and
        panic — the whole process — so a missing row is reported as
        :class:`LoggedOut` instead, and the next connect pairs a new device.
        """
        assert self._sessions is not None
        try:
            self._jid = await self._sessions.stored_jid(self.token) or self._jid
            jid = self._jid
            if jid is None:
                return True
            parse_device_jid(jid)  # a malformed JID never reaches Go either
            exists = await self._sessions.session_exists(jid)
        except ValueError:
            exists = False
        except Exception as exc:  # the database is unreachable: a dial that failed, tried again later
            raise ConnectError(f"cannot read the WhatsApp session from the database: {exc}") from exc
        if exists:
            return True
        self._jid = None
        self._emit(
            LoggedOut(
                f"Logged out (WhatsApp session {jid} is not in the database: unlinked elsewhere or never "
                "imported; pair the device again)"
            )
        )
        log.warning("neonize: %s: session %s is not in the database", self.token, jid)
        return False

    async def _wait_under_way(self, attempt: _Attempt) -> str | None:
        # The timeout starts once this attempt holds the set-up lease: other
        # devices' set-ups before it are not this device's slowness.
        first: set[asyncio.Future[Any]] = {attempt.started, attempt.ready}
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        try:
            return await asyncio.wait_for(asyncio.shield(attempt.ready), self._connect_timeout)
        except TimeoutError:
            error = f"WhatsApp did not answer within {self._connect_timeout:g} s"
            self._retire(attempt, error)
            return error

    def _dial_target(self) -> tuple[str, int]:
        if self._proxy:
            parts = urlsplit(self._proxy)
            return parts.hostname or "", parts.port or (1080 if parts.scheme.startswith("socks") else 8080)
        return _WHATSAPP_HOST, 443

    def _probe(self) -> str | None:
        """Dial WhatsApp (or the proxy) from Python first: None when reachable, else the dial error.

        Every ``Neonize()`` call leaks an open sqlite handle in goneonize (no
        way to close it is exported), so a device retrying while the network
        is down would run the process out of file descriptors. A plain TCP dial
        costs nothing and keeps those attempts out of Go.
        """
        host, port = self._dial_target()
        try:
            with socket.create_connection((host, port), timeout=self._connect_timeout):
                return None
        except OSError as exc:
            return f"failed to dial {host}:{port}: {exc}"

    async def disconnect(self) -> None:
        self._retire(self._attempt)
        await self._wait_stopped()

    async def logout(self) -> None:
        if self._connected:
            try:
                await asyncio.wait_for(self._call(self._client.logout), 15)
            except Exception as exc:  # unlinking is best effort; the session goes either way
                log.warning("neonize: logout of %s failed: %s", self.token, exc)
        self._retire(self._attempt)
        await self._wait_stopped()
        await self._forget_session()

    async def send_text(self, to: str, text: str) -> SentMessage:
        self._require_connected()
        try:
            jid = parse_jid(to)
        except ValueError as exc:
            raise SendError(str(exc)) from exc
        try:
            response = await self._call(self._client.send_message, jid, wa.Message(conversation=text))
        except Exception as exc:
            raise map_error(exc, SendError) from exc
        return SentMessage(id=response.ID, timestamp=to_datetime(response.Timestamp))

    async def send(self, to: str, message: OutgoingMessage) -> SentMessage:
        """Any kind of message; a plain text takes :meth:`send_text`'s path."""
        if message.text is not None and message.reply_to is None and not message.mentions:
            return await self.send_text(to, message.text)
        self._require_connected()
        if message.media is not None:
            return await self._send_media(to, message, message.media)
        try:
            jid = parse_jid(to)
            built = build_message(to, message)
        except ValueError as exc:
            raise SendError(str(exc)) from exc
        return await self._send_built(jid, built)

    async def _send_media(self, to: str, message: OutgoingMessage, media: OutgoingMedia) -> SentMessage:
        """Upload the prepared local file (never a URL), then send the message that names the upload."""
        try:
            jid = parse_jid(to)
            ctx = context_info(message)
        except ValueError as exc:
            raise SendError(str(exc)) from exc

        def upload() -> Any:
            return self._client.upload(media.path.read_bytes(), upload_kind(media.type))

        try:
            uploaded = await self._call(upload)
        except OSError as exc:
            raise SendError(f"cannot read the media file: {exc}") from exc
        except Exception as exc:
            raise map_error(exc, SendError) from exc
        return await self._send_built(jid, build_media_message(media, uploaded, ctx))

    async def edit(self, chat: str, message_id: str, text: str) -> SentMessage:
        self._require_connected()
        try:
            jid = parse_jid(chat)
        except ValueError as exc:
            raise SendError(str(exc)) from exc
        return await self._send_built(jid, build_edit(chat, message_id, text))

    async def revoke(self, chat: str, message_id: str) -> None:
        self._require_connected()
        try:
            jid = parse_jid(chat)
        except ValueError as exc:
            raise SendError(str(exc)) from exc
        await self._send_built(jid, build_revoke(chat, message_id))

    async def _send_built(self, jid: nz.JID, message: wa.Message) -> SentMessage:
        try:
            response = await self._call(self._client.send_message, jid, message)
        except Exception as exc:
            raise map_error(exc, SendError) from exc
        return SentMessage(id=response.ID, timestamp=to_datetime(response.Timestamp))

    async def mark_read(self, chat: str, message_ids: list[str], sender: str | None) -> None:
        self._require_connected()
        if not message_ids:
            return
        try:
            chat_jid = parse_jid(chat)
            # In a direct chat the author is the chat; in a group whatsmeow needs the participant.
            sender_jid = parse_jid(sender) if sender else chat_jid
            await self._call(
                self._client.mark_read, *message_ids, chat=chat_jid, sender=sender_jid, receipt=ReceiptType.READ
            )
        except ValueError as exc:
            raise SendError(str(exc)) from exc
        except Exception as exc:
            raise map_error(exc, SendError) from exc

    async def send_presence(self, chat: str, state: PresenceState) -> None:
        self._require_connected()
        presence = ChatPresence.CHAT_PRESENCE_PAUSED if state == "paused" else ChatPresence.CHAT_PRESENCE_COMPOSING
        media = (
            ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO
            if state == "recording"
            else ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT
        )
        try:
            await self._call(self._client.send_chat_presence, parse_jid(chat), presence, media)
        except ValueError as exc:
            raise SendError(str(exc)) from exc
        except Exception as exc:
            raise map_error(exc, SendError) from exc

    async def create_group(self, name: str, participants: list[str]) -> GroupInfo:
        self._require_connected()
        try:
            jids = [parse_jid(p) for p in participants]
            info = await self._call(self._client.create_group, name, jids)
        except ValueError as exc:
            raise SendError(str(exc)) from exc
        except Exception as exc:
            raise map_error(exc, SendError) from exc
        return translate_group_info(info, self._resolve_lid)

    async def group_info(self, jid: str) -> GroupInfo:
        self._require_connected()
        info = await self._group_call(self._client.get_group_info, _group_jid(jid))
        return translate_group_info(info, self._resolve_lid)

    async def update_participants(
        self, jid: str, action: ParticipantAction, participants: list[str]
    ) -> list[ParticipantResult]:
        self._require_connected()
        change = {
            "add": ParticipantChange.ADD,
            "remove": ParticipantChange.REMOVE,
            "promote": ParticipantChange.PROMOTE,
            "demote": ParticipantChange.DEMOTE,
        }[action]
        try:
            jids = [parse_jid(p) for p in participants]
        except ValueError as exc:
            raise SendError(str(exc)) from exc
        answers = await self._group_call(self._client.update_group_participants, _group_jid(jid), jids, change)
        return participant_results(participants, answers)

    async def invite_link(self, jid: str, revoke: bool = False) -> str:
        self._require_connected()
        link: str = await self._group_call(self._client.get_group_invite_link, _group_jid(jid), revoke)
        return link

    async def leave_group(self, jid: str) -> None:
        self._require_connected()
        await self._group_call(self._client.leave_group, _group_jid(jid))

    async def download(self, ref: MediaRef) -> bytes:
        self._require_connected()
        if ref.driver != "neonize":
            raise NotFoundError(f"a {ref.driver} media reference cannot be downloaded through neonize")
        try:
            message = media_message(ref)
            data = await self._call(self._client.download_any, message)
        except Exception as exc:
            raise map_error(exc, CheckError) from exc
        if not isinstance(data, bytes):
            raise CheckError("neonize returned no bytes for the media")
        return data

    async def _group_call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A group query or change: WhatsApp's "not found" / "forbidden" become the seam's errors."""
        try:
            return await self._call(fn, *args, **kwargs)
        except Exception as exc:
            raise group_error(exc) from exc

    async def set_typing(self, to: str, on: bool) -> None:
        """Best effort: only a lost connection is raised; other failures are logged and ignored."""
        self._require_connected()
        state = ChatPresence.CHAT_PRESENCE_COMPOSING if on else ChatPresence.CHAT_PRESENCE_PAUSED
        try:
            jid = parse_jid(to)
            await self._call(self._client.send_chat_presence, jid, state, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT)
        except Exception as exc:
            error = map_error(exc, SendError)
            if isinstance(error, NotConnectedError):
                raise error from exc
            log.debug("neonize: typing indicator for %s failed: %s", self.token, exc)

    async def is_on_whatsapp(self, phones: list[str]) -> list[PhoneCheck]:
        self._require_connected()
        if not phones:
            return []
        try:
            responses = await self._call(self._client.is_on_whatsapp, *(f"+{p}" for p in phones))
        except Exception as exc:
            raise map_error(exc, CheckError) from exc
        return phone_checks(phones, responses)

    async def joined_groups(self) -> list[Group]:
        self._require_connected()
        try:
            groups = await self._call(self._client.get_joined_groups)
        except Exception as exc:
            raise map_error(exc, CheckError) from exc
        return [translate_group(info, self._own_users) for info in groups]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._retire(self._attempt)
        await self._wait_stopped()
        self._pool.shutdown(wait=False, cancel_futures=True)
        _live_drivers.discard(self)

    # -- attempts ------------------------------------------------------------

    def _bind_loop(self) -> EventStream:
        if self._stream is None:
            self._loop = asyncio.get_running_loop()
            self._stream = EventStream(self._loop)
        return self._stream

    def _emit(self, event: DriverEvent) -> None:
        if self._stream is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is exiting
                self._stream.emit(event)

    def _post(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the event loop, from any thread."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(fn)

    @staticmethod
    def _resolve(future: asyncio.Future[T], value: T) -> None:
        if not future.done():
            future.set_result(value)

    def _settle(self, attempt: _Attempt, error: str | None) -> None:
        """Resolve ``connect()``'s wait; the first outcome wins."""
        self._post(lambda: self._resolve(attempt.ready, error))

    def _is_current(self, attempt: _Attempt) -> bool:
        with self._lock:
            return self._attempt is attempt

    def _start_attempt(self, method: Method) -> _Attempt:
        assert self._loop is not None
        if not self._shared:
            self.session_path.parent.mkdir(parents=True, exist_ok=True)
        loop = self._loop
        with self._lock:
            self._generation += 1
            attempt = _Attempt(
                uuid=f"{self.token}.{self._generation}".encode(),
                method=method,
                jid=self._jid if self._shared else None,
                started=loop.create_future(),
                ready=loop.create_future(),
                ended=loop.create_future(),
            )
            self._attempt = attempt
            self._running.add(attempt)
            self._go_ids.add(attempt.uuid)
        self._client.uuid = attempt.uuid
        attempt.refs = (
            func_string(lambda _id, qr: self._guard(self._on_qr, attempt, ctypes.string_at(qr))),
            func_string(lambda _id, status: self._guard(self._on_status, attempt, ctypes.string_at(status))),
            func_callback_bytes(
                lambda _id, data, size, code: self._guard(self._on_event, attempt, code, ctypes.string_at(data, size))
            ),
            func_callback_bytes2(log_whatsmeow),
            (ctypes.c_char * len(_SUBSCRIBED_EVENTS)).from_buffer_copy(_SUBSCRIBED_EVENTS),
            ProxySettings(self._proxy)._to_c_struct() if self._proxy else None,
        )
        threading.Thread(
            target=self._run_connection, args=(attempt,), name=f"neonize-conn-{self.token}", daemon=True
        ).start()
        return attempt

    def _run_connection(self, attempt: _Attempt) -> None:
        """Body of the connection thread: ``Neonize()`` returns only when the connection is over."""
        qr_cb, status_cb, event_cb, log_cb, subscribed, proxy = attempt.refs
        props = DeviceProps(os="wa-gateway", platformType=DeviceProps.CHROME).SerializeToString()
        # Shared store: resume the device by its JID (checked to exist), or ask for a blank one to pair.
        # Neither (0 and no JID) means whatsmeow's "first device": right only for a file of one's own.
        jid = parse_device_jid(attempt.jid).SerializeToString() if attempt.jid else b""
        new_device = int(self._shared and not attempt.jid)
        error = ""
        try:
            attempt.lease.acquire()
            self._post(lambda: self._lease_started(attempt))
            result = gocode.Neonize(
                self._db.encode(),
                attempt.uuid,
                jid,
                len(jid),
                new_device,
                _whatsmeow_log_level(),
                qr_cb,
                status_cb,
                event_cb,
                log_cb,
                subscribed,
                len(_SUBSCRIBED_EVENTS),
                props,
                len(props),
                b"",
                0,
                ctypes.byref(proxy) if proxy is not None else None,
            )
            error = bytes(result).decode(errors="replace")
        except BaseException as exc:  # never let a traceback escape a thread
            error = f"{type(exc).__name__}: {exc}"
        finally:
            attempt.lease.release()
            self._on_connection_ended(attempt, error)

    def _lease_started(self, attempt: _Attempt) -> None:
        assert self._loop is not None
        self._loop.call_later(SETUP_GRACE_S, attempt.lease.release)
        self._resolve(attempt.started, None)

    def _on_connection_ended(self, attempt: _Attempt, error: str) -> None:
        self._stop_go_id(attempt.uuid)  # a failed dial leaves the client in goneonize's maps
        with self._lock:
            current = self._attempt is attempt
            if current:
                self._attempt = None
                was_connected, self._connected = self._connected, False
        if current and (attempt.under_way or was_connected):
            self._emit(Disconnected(error or "Disconnected"))
        self._settle(attempt, error or "the connection closed before WhatsApp answered")

        def finish() -> None:
            self._resolve(attempt.ended, None)
            self._running.discard(attempt)

        self._post(finish)

    def _retire(self, attempt: _Attempt | None, error: str = "connection attempt cancelled") -> None:
        """Stop reporting ``attempt`` (if it is the current one) and stop its Go client in the background."""
        if attempt is None:
            return
        with self._lock:
            if self._attempt is attempt:
                self._attempt = None
                self._connected = False
        self._settle(attempt, error)
        threading.Thread(
            target=self._stop_go_id, args=(attempt.uuid,), name=f"neonize-stop-{self.token}", daemon=True
        ).start()

    async def _wait_stopped(self) -> None:
        """Wait (bounded) until this driver's connection threads have returned from Go."""
        pending = [attempt.ended for attempt in self._running if not attempt.ended.done()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_WAIT_S)

    def _stop_go_id(self, uuid: bytes) -> None:
        """Stop one Go client. Blocks while it is still dialing, so never call it on the loop."""
        with self._lock:
            if uuid not in self._go_ids:
                return
        # Disconnect only reads goneonize's maps and waits for an in-flight dial;
        # Stop writes them, so it runs under the lock, where it is quick by then.
        # Neither runs under self._lock: whatsmeow may be waiting for a callback
        # of ours that needs it.
        gocode.Disconnect(uuid)
        with GO_MAP_LOCK:
            with self._lock:
                if uuid not in self._go_ids:
                    return
                self._go_ids.discard(uuid)
            gocode.Stop(uuid)

    def _stop_go_all(self) -> list[threading.Thread]:
        """Start stopping every Go client of this driver (used at interpreter exit); returns the threads."""
        with self._lock:
            self._attempt = None
            self._connected = False
            ids = list(self._go_ids)
        threads = [threading.Thread(target=self._stop_go_id, args=(uuid,), daemon=True) for uuid in ids]
        for thread in threads:
            thread.start()
        return threads

    def _require_connected(self) -> None:
        if self._closed or not self._connected:
            raise NotConnectedError("device is not connected")

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a short neonize call on this device's pool."""
        try:
            future = self._pool.submit(fn, *args, **kwargs)
        except RuntimeError as exc:
            raise NotConnectedError("driver is closed") from exc
        return await asyncio.wrap_future(future)

    async def _forget_session(self) -> None:
        """Delete this device's session: its file, or its rows in the shared store."""
        if not self._shared:
            self._remove_session_files()
            return
        jid, self._jid = self._jid, None
        if jid is not None and self._sessions is not None:
            try:
                await self._sessions.forget_session(jid)
            except Exception as exc:  # whatsmeow deletes it itself on a logout it hears of
                log.warning("neonize: could not delete the session of %s: %s", self.token, exc)

    def _remove_session_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.session_path}{suffix}").unlink()

    # -- callbacks from Go (on Go threads) -------------------------------------

    def _guard(self, handler: Callable[..., None], attempt: _Attempt, *args: Any) -> None:
        """Run a Go callback: stale attempts are ignored and nothing may raise into ctypes."""
        attempt.lease.release()  # Go calls back only after its set-up: its map writes are done
        if not self._is_current(attempt):
            return
        try:
            handler(attempt, *args)
        except Exception:
            log.exception("neonize: callback for %s failed", self.token)

    def _on_qr(self, attempt: _Attempt, raw: bytes) -> None:
        code = raw.decode()
        if attempt.method == "qr":
            self._emit(Qr(code))
            self._mark_under_way(attempt)
        elif not attempt.code_requested:
            # PairPhone needs a live socket, which the first QR proves.
            attempt.code_requested = True
            self._pool.submit(self._request_pairing_code, attempt)

    def _request_pairing_code(self, attempt: _Attempt) -> None:
        try:
            code = self._client.PairPhone(self.token, True, ClientName.LINUX, ClientType.CHROME)
        except Exception as exc:
            self._fail(attempt, f"Pairing code request failed: {exc}")
            return
        if self._is_current(attempt):
            self._emit(PairingCode(code))
            self._mark_under_way(attempt)

    def _on_status(self, attempt: _Attempt, raw: bytes) -> None:
        status = raw.decode()
        if status == "success":
            log.info("neonize: %s paired", self.token)
        elif status == "timeout":
            what = "QR code" if attempt.method == "qr" else "Pairing code"
            self._fail(attempt, f"{what} expired")
        else:
            self._fail(attempt, f"Pairing failed: {status}")

    def _on_event(self, attempt: _Attempt, code: int, payload: bytes) -> None:
        event_type = INT_TO_EVENT.get(code)
        if event_type is None:
            return
        event = event_type.FromString(payload)
        if isinstance(event, nz.Message):
            message = translate_message(event, self._resolve_lid, self._own_phone())
            if message is not None:
                self._emit(message)
        elif isinstance(event, nz.Receipt):
            receipt = translate_receipt(event, self._resolve_lid)
            if receipt is not None:
                self._emit(receipt)
        elif isinstance(event, nz.HistorySync):
            contacts = translate_history(event, self._resolve_lid, exclude=self._own_users)
            if contacts is not None:
                self._emit(contacts)
        elif isinstance(event, nz.Connected):
            self._on_connected(attempt)
        elif isinstance(event, nz.LoggedOut):
            self._on_logged_out(attempt, event)
        elif isinstance(event, nz.PairStatus):
            if event.Status == nz.PairStatus.ERROR:
                self._fail(attempt, f"Pairing failed: {event.Error}")
        elif isinstance(event, nz.Disconnected):
            self._fail(attempt, "Disconnected")
        elif isinstance(event, nz.ConnectFailure):
            reason = _enum_name(nz.ConnectFailureReason, event.Reason, "GENERIC")
            self._fail(attempt, f"WhatsApp refused the connection ({reason}) {event.Message}".strip())
        elif isinstance(event, nz.TemporaryBan):
            self._fail(attempt, f"Temporarily banned by WhatsApp for {event.Expire} s")
        elif isinstance(event, nz.ClientOutdated):
            self._fail(attempt, "WhatsApp says this client is outdated: update neonize")
        elif isinstance(event, nz.StreamReplaced):
            self._on_replaced(attempt)
        else:  # KeepAliveTimeout / KeepAliveRestored / StreamError: whatsmeow handles them
            log.debug("neonize: %s: %s", self.token, type(event).__name__)

    def _on_connected(self, attempt: _Attempt) -> None:
        with self._lock:
            if self._attempt is not attempt:
                return
            self._connected = True
            me = self._client.get_me()  # safe now: the client exists and is logged in
            self._own_users = tuple(user for user in (me.JID.User, me.LID.User) if user)
            connected = translate_connected(me)
            if self._shared and connected.jid:
                self._jid = connected.jid  # resumed by it from now on (the registry records it too)
        self._emit(connected)
        self._mark_under_way(attempt)

    def _on_logged_out(self, attempt: _Attempt, event: nz.LoggedOut) -> None:
        reason = _enum_name(nz.ConnectFailureReason, event.Reason, "")
        self._settle(attempt, None)  # WhatsApp was reached: connect() succeeds, the event tells the rest
        self._retire(attempt)
        if self._shared:
            self._post(lambda: asyncio.ensure_future(self._forget_session()))
        else:
            self._remove_session_files()
        self._emit(LoggedOut("Logged out" + (f" ({reason})" if reason else "")))

    def _on_replaced(self, attempt: _Attempt) -> None:
        """Another client took this session: stop this one and say so — as its own event, never as
        ``Disconnected``, which the device would answer by reconnecting (and taking it back)."""
        if not self._is_current(attempt):
            return
        reason = Replaced().reason
        self._retire(attempt, reason)
        if attempt.under_way:
            self._emit(Replaced(reason))

    def _mark_under_way(self, attempt: _Attempt) -> None:
        attempt.under_way = True
        self._settle(attempt, None)

    def _fail(self, attempt: _Attempt, reason: str) -> None:
        """End an attempt: before it was under way connect() raises, afterwards Disconnected is reported."""
        if not self._is_current(attempt):
            return
        self._retire(attempt, reason)
        if attempt.under_way:
            self._emit(Disconnected(reason))

    def _own_phone(self) -> str | None:
        """The linked number's digits (our JID's user part), once connected."""
        return self._own_users[0] if self._own_users else None

    def _resolve_lid(self, lid_user: str) -> str | None:
        with self._lock:
            if not self._connected:
                return None  # GetPNFromLID crashes the process on a client that is not logged in
            try:
                jid = self._client.get_pn_from_lid(
                    nz.JID(User=lid_user, Server="lid", RawAgent=0, Device=0, Integrator=0, IsEmpty=False)
                )
            except Exception as exc:
                log.debug("neonize: no phone number for LID %s: %s", lid_user, exc)
                return None
        return jid.User if jid.User and jid.Server in PN_SERVERS else None

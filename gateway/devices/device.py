"""One linked WhatsApp number: its state machine and the actions on it.

Status: ``pairing`` → ``connected`` ⇄ ``disconnected`` → ``logged_out``.

A :class:`Device` owns its driver, its event :class:`~gateway.devices.pump.Pump`
and its :class:`~gateway.devices.reconnect.Reconnector`. Every status change is
stored together with its webhook outbox rows in one transaction, and only
then told to WebSocket listeners and the dispatcher, so a listener never
hears of a change the store could still lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from gateway.api.errors import ApiError, device_moving
from gateway.devices import views
from gateway.devices.pump import Pump
from gateway.devices.reconnect import Reconnector
from gateway.drivers.base import (
    CheckError,
    Connected,
    ConnectError,
    Disconnected,
    Driver,
    DriverError,
    FencedError,
    Group,
    LoggedOut,
    Method,
    NotConnectedError,
    OutgoingMessage,
    PhoneCheck,
    Replaced,
    SentMessage,
)
from gateway.messages.shape import outgoing_text
from gateway.store import DeviceRow
from gateway.timestamps import now_iso

T = TypeVar("T")

if TYPE_CHECKING:
    from gateway.devices.manager import DeviceManager

log = structlog.get_logger("gateway.devices")

# What to try next when a dial fails: the usual causes are a network that blocks WhatsApp or no phone at hand.
CONNECT_HINT = (
    "Check this host's network; behind a proxy set NEONIZE_PROXY, or try without a phone with WA_DRIVER=sandbox."
)


class Device:
    """One linked WhatsApp number."""

    def __init__(self, manager: DeviceManager, row: DeviceRow, driver: Driver) -> None:
        self.m = manager
        self.row = row
        self.driver = driver
        self.qr: str | None = None
        self.qr_at: float | None = None
        self.pairing_code: str | None = None
        self.connected_mono: float | None = None
        self.last_error: str | None = None  # why the last dial failed or the connection was lost; None once connected
        self.ops = asyncio.Lock()  # connect / disconnect / logout, one at a time
        self.send_lock = asyncio.Lock()  # FIFO: sends leave in the order they were accepted
        self.pump = Pump(self)
        self.reconnector = Reconnector(self)
        self._connected_evt = asyncio.Event()
        self._changed = asyncio.Condition()
        self._quiet = False  # set while the gateway itself disconnects / shuts down

    @property
    def token(self) -> str:
        return self.row.token

    @property
    def status(self) -> str:
        return self.row.status

    # --- views ---------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return views.state(self)

    def summary(self) -> dict[str, Any]:
        return views.summary(self)

    # --- lifecycle -----------------------------------------------------------

    def start_pump(self) -> None:
        self.pump.start()

    async def connect(self, method: Method) -> None:
        """Start pairing or reconnecting; raise CONNECTION_FAILED if WhatsApp is unreachable."""
        async with self.ops:
            self.reconnector.cancel()
            self._quiet = False
            if self.row.status == "connected" and self._connected_evt.is_set():
                return
            paired = self.driver.is_paired()
            self.row.method = method
            self.row.status = "disconnected" if paired else "pairing"
            self.row.reconnecting = paired
            self.qr = None
            self.pairing_code = None
            await self._save_and_announce()
            try:
                await asyncio.wait_for(self.driver.connect(method), self.m.settings.connect_timeout_ms / 1000)
            except (ConnectError, TimeoutError) as exc:
                reason = str(exc) or "connection timed out"
                self.last_error = reason
                if paired:
                    self.reconnector.schedule()
                else:
                    self.row.status = "disconnected"
                    self.row.reconnecting = False
                    await self._save_and_announce()
                self.publish("connection-error", message=reason)
                # The browser gets the frame; the operator's log gets the reason too.
                log.warning("device.connect_failed", token=self.token, paired=paired, error=reason)
                raise ApiError("CONNECTION_FAILED", f"could not reach WhatsApp: {reason}. {CONNECT_HINT}") from exc
        if paired:
            # A paired session comes back on its own; give it a moment so the
            # answer can say "connected".
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected_evt.wait(), 2.0)

    async def disconnect(self) -> None:
        """Close the connection on request: ``reconnecting`` false, session kept."""
        async with self.ops:
            self.reconnector.cancel()
            self._quiet = True
            await self.driver.disconnect()
            was = self.row.status
            self.qr = None
            self.pairing_code = None
            self._connected_evt.clear()
            self.connected_mono = None
            self.row.status = "disconnected"
            self.row.reconnecting = False
            if was == "connected":
                await self._transition("device.disconnected", "connection-error", message="Disconnected")
            else:
                await self._save_and_announce()

    async def logout(self) -> None:
        """Unlink from WhatsApp (emits ``device.logged_out``) and delete the session file."""
        async with self.ops:
            self.reconnector.cancel()
            self._quiet = True
            try:
                await self.driver.logout()
            except DriverError as exc:
                log.warning("device.logout_failed", token=self.token, error=str(exc))
            self.qr = None
            self._connected_evt.clear()
            self.row.status = "logged_out"
            self.row.reconnecting = False
            self.row.jid = None  # the session is gone: the next pairing is a new WhatsApp device
            await self._transition("device.logged_out", "connection-error", message="Logged out")

    async def close(self) -> None:
        """Shutdown: stop everything, emit nothing."""
        self._quiet = True
        self.reconnector.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.driver.close(), 2.5)
        await self.pump.stop()

    def restore(self) -> None:
        """At start-up: reconnect a paired device in the background, no scan needed.

        A device disconnected on request stays down; one that was still pairing
        comes back disconnected and pairs again with ``POST /devices``.
        """
        r = self.row
        if r.status == "logged_out":
            return
        stopped_by_user = r.status == "disconnected" and not r.reconnecting
        if not stopped_by_user and self.driver.is_paired():
            r.status, r.reconnecting = "disconnected", True
            self.reconnector.schedule(immediately=True)
        else:
            r.status, r.reconnecting = "disconnected", False

    # --- actions -------------------------------------------------------------

    async def send_text(self, to_jid: str, text: str) -> SentMessage:
        """A text: the fast path."""
        return await self._send(to_jid, text, None)

    async def send(self, to_jid: str, message: OutgoingMessage) -> SentMessage:
        """Any kind of message (media, location, …) in this device's send order; text has :meth:`send_text`."""
        return await self._send(to_jid, outgoing_text(message), message)

    async def _send(self, to_jid: str, text: str | None, message: OutgoingMessage | None) -> SentMessage:
        """Sends of one device leave in the order they were accepted. The message is stored behind
        the send (see :class:`~gateway.messages.record.Recorder`): no write is awaited here."""
        self._require_connected()
        db = self.m.store.db
        if db.backlog >= db.high_water:  # the store far behind (a load it cannot keep up with): at its pace
            await db.room()
        started = time.time()
        async with self.send_lock:
            self._require_connected()
            try:
                delay = self.m.settings.typing_delay_ms
                if delay:
                    await self.driver.set_typing(to_jid, True)
                    await asyncio.sleep(delay / 1000)
                if message is None:
                    sent = await self.driver.send_text(to_jid, text or "")
                else:
                    sent = await self.driver.send(to_jid, message)
                if delay:
                    with contextlib.suppress(DriverError):
                        await self.driver.set_typing(to_jid, False)
            except FencedError as exc:  # another node holds the device now: it is being stopped here
                retry = self.m.placement.retry_after_s if self.m.placement is not None else 1
                raise device_moving(self.token, retry) from exc
            except NotConnectedError as exc:
                raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
            except DriverError as exc:
                self.m.recorder.failed(self, to_jid, text, message, str(exc), started)
                raise ApiError("SEND_FAILED", f"send failed: {exc}") from exc
            self.row.messages_sent += 1
            self.m.recorder.sent(self, to_jid, text, message, sent, started)
        self.m.stats_changed(self)
        return sent

    async def check_phones(self, phones: list[str]) -> list[PhoneCheck]:
        self._require_connected()
        try:
            return await self.driver.is_on_whatsapp(phones)
        except NotConnectedError as exc:
            raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
        except DriverError as exc:
            raise ApiError("VALIDATION_FAILED", f"on-WhatsApp check failed: {exc}") from exc

    async def groups(self) -> list[Group]:
        self._require_connected()
        try:
            return await self.driver.joined_groups()
        except NotConnectedError as exc:
            raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
        except (CheckError, DriverError) as exc:
            raise ApiError("INTERNAL_ERROR", f"could not list groups: {exc}") from exc

    async def reset_stats(self) -> None:
        self.row.messages_sent = 0
        self.row.messages_received = 0
        await self._save_and_announce()

    async def update(self, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.row, key, value)
        await self._save_and_announce()

    def _require_connected(self) -> None:
        if self.row.status != "connected":
            raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected")

    # --- the state machine: status events from the pump ------------------------------

    def on_qr(self, code: str) -> None:
        first = self.qr is None
        self.qr, self.qr_at = code, time.time()
        self.publish("qrcode", data=code)
        if first:
            self.publish("session_update", data=self.state())

    def on_pairing_code(self, code: str) -> None:
        self.pairing_code = code
        self.publish("pairing-code", data={"code": code})

    async def on_connected(self, ev: Connected) -> None:
        # The reconnect loop (if any) ends by itself once its connect() returns.
        self.reconnector.connected()
        self.last_error = None
        self.qr = None
        self.pairing_code = None
        now = now_iso()
        self.row.status = "connected"
        self.row.reconnecting = False
        self.row.pushname = ev.pushname or self.row.pushname
        self.row.platform = ev.platform or self.row.platform
        self.row.phone = ev.phone or self.row.phone or self.token
        self.row.jid = ev.jid or self.row.jid
        self.row.connected_at = now
        self.connected_mono = time.monotonic()
        self._connected_evt.set()
        self._quiet = False
        await self._transition(
            "device.connected",
            "connection-success",
            data={"pushname": self.row.pushname, "platform": self.row.platform},
        )
        log.info("device.connected", token=self.token)

    async def on_disconnected(self, ev: Disconnected) -> None:
        if self._quiet or self.row.status == "logged_out":
            return
        paired = self.driver.is_paired()
        await self._went_down(ev.reason, reconnecting=paired)
        log.info("device.disconnected", token=self.token, reason=ev.reason, reconnecting=paired)
        if paired:
            self.reconnector.schedule()

    async def on_replaced(self, ev: Replaced) -> None:
        """Another client opened this session: disconnected, session kept, and *not* reconnected
        (reconnecting would take the session back, and the other client would take it back again)."""
        if self._quiet or self.row.status == "logged_out":
            return
        self.reconnector.cancel()
        await self._went_down(ev.reason, reconnecting=False)
        log.warning("device.replaced", token=self.token, reason=ev.reason)

    async def _went_down(self, reason: str, reconnecting: bool) -> None:
        was_connected = self.row.status == "connected"
        self._connected_evt.clear()
        self.connected_mono = None
        self.last_error = reason
        self.row.status = "disconnected"
        self.row.reconnecting = reconnecting
        self.qr = None
        if was_connected:
            await self._transition("device.disconnected", "connection-error", message=reason)
        else:
            await self._save_and_announce()
            self.publish("connection-error", message=reason)

    async def on_logged_out(self, ev: LoggedOut) -> None:
        self.reconnector.cancel()
        self.qr = None
        self._connected_evt.clear()
        self.connected_mono = None
        self.last_error = ev.reason
        self.row.status = "logged_out"
        self.row.reconnecting = False
        self.row.jid = None
        await self._transition("device.logged_out", "connection-error", message=ev.reason)

    # --- plumbing ----------------------------------------------------------------

    async def _transition(self, hook: str, frame: str, data: Any = None, message: str | None = None) -> None:
        """Persist a status change with its webhook, then tell listeners."""
        ts = now_iso()
        self.row.last_update = ts
        await self.m.store.save_device(self.row, self.m.router.deliveries(hook, replace(self.row), None, ts))
        self.m.wake_dispatcher()
        self.publish(frame, data=data, message=message)
        await self._announce()

    async def _save_and_announce(self) -> None:
        self.row.last_update = now_iso()
        await self.m.store.save_device(self.row)
        await self._announce()

    async def wait_for_status(self, *statuses: str, timeout: float = 2.0) -> bool:
        """Wait (bounded) until the pump has moved the device into one of ``statuses``."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self.row.status in statuses)
        except TimeoutError:
            return False
        return True

    async def _announce(self) -> None:
        self.publish("session_update", data=self.state())
        async with self._changed:
            self._changed.notify_all()

    def publish(self, event: str, data: Any = None, message: str | None = None) -> None:
        """A WebSocket frame about this device, for its owner's listeners (and admins)."""
        self.m.hub.publish(event, self.token, data, message, self.row.owner_id)

    def publish_lazy(self, event: str, build: Callable[[], Any]) -> None:
        """:meth:`publish`, the data built (``build()``) only when someone will receive the frame."""
        self.m.hub.publish_lazy(event, self.token, build, self.row.owner_id)

    def publish_each(self, event: str, items: Sequence[T], build: Callable[[T], Any]) -> None:
        """:meth:`publish_lazy` for several events: ``build(item)`` each, only when someone will receive them."""
        self.m.hub.publish_each(event, self.token, items, build, self.row.owner_id)

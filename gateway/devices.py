"""Devices: the state machine, the event pump, the send queue, reconnects.

Status: ``pairing`` → ``connected`` ⇄ ``disconnected`` → ``logged_out``.

Each :class:`Device` owns its driver and one pump task that consumes the
driver's events in order. For every event the pump writes the state change
and its webhook outbox rows in one transaction, then publishes WebSocket
frames and wakes the dispatcher. Devices share nothing but the registry, so a
stuck device never delays another. The one write-behind is the send counter:
the manager stores every device's within ``STATS_FLUSH_S`` in one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog

from gateway.api.envelope import iso, now_iso
from gateway.api.errors import ApiError
from gateway.drivers.base import (
    CheckError,
    Connected,
    ConnectError,
    Disconnected,
    Driver,
    DriverError,
    DriverEvent,
    Group,
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
from gateway.events import Hub
from gateway.phones import mask
from gateway.settings import Settings
from gateway.store import (
    ContactRow,
    DeviceRow,
    Store,
    device_values,
    enqueue_sync,
    save_device_sync,
    save_stats_sync,
    stats_values,
    upsert_contacts_sync,
)
from gateway.webhooks import WebhookRouter

log = structlog.get_logger("gateway.devices")

STATS_FLUSH_S = 0.25  # send counters reach the registry this long after a send, in one write for all devices

DriverFactory = Callable[[str], Driver]


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
        self.ops = asyncio.Lock()  # connect / disconnect / logout, one at a time
        self.send_lock = asyncio.Lock()  # FIFO: sends leave in the order they were accepted
        self._pump: asyncio.Task[None] | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._connected_evt = asyncio.Event()
        self._changed = asyncio.Condition()
        self._quiet = False  # set while the gateway itself disconnects / shuts down
        self._attempt = 0

    @property
    def token(self) -> str:
        return self.row.token

    @property
    def status(self) -> str:
        return self.row.status

    # --- views ---------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        r = self.row
        return {
            "token": r.token,
            "status": r.status,
            "reconnecting": r.reconnecting,
            "ready": r.status == "connected",
            "authenticated": r.status == "connected" or self.driver.is_paired(),
            "hasQR": self.qr is not None,
            "pairingCode": self.pairing_code if r.status == "pairing" else None,
            "info": {"pushname": r.pushname, "platform": r.platform, "phoneMasked": mask(r.phone)},
            "uptime": round(time.monotonic() - self.connected_mono, 3) if self.connected_mono else 0,
            "stats": {"messagesSent": r.messages_sent, "messagesReceived": r.messages_received},
            "lastUpdate": r.last_update,
            "name": r.name,
            "webhookUrl": r.webhook_url,
            "webhookEvents": r.webhook_events,
        }

    def summary(self) -> dict[str, Any]:
        r = self.row
        return {
            "token": r.token,
            "name": r.name,
            "status": r.status,
            "method": r.method,
            "pushname": r.pushname,
            "createdAt": r.created_at,
            "connectedAt": r.connected_at,
        }

    # --- lifecycle -----------------------------------------------------------

    def start_pump(self) -> None:
        if self._pump is None:
            # A fresh context: the pump outlives the request that created it, and
            # must not log under that request's id.
            self._pump = asyncio.create_task(self._run_pump(), name=f"pump-{self.token}", context=contextvars.Context())

    async def connect(self, method: Method) -> None:
        """Start pairing or reconnecting; raise CONNECTION_FAILED if WhatsApp is unreachable."""
        async with self.ops:
            self._cancel_reconnect()
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
                if paired:
                    self._schedule_reconnect()
                else:
                    self.row.status = "disconnected"
                    self.row.reconnecting = False
                    await self._save_and_announce()
                self._publish("connection-error", message=reason)
                raise ApiError("CONNECTION_FAILED", f"could not reach WhatsApp: {reason}") from exc
        if paired:
            # A paired session comes back on its own; give it a moment so the
            # answer can say "connected".
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected_evt.wait(), 2.0)

    async def disconnect(self) -> None:
        """Close the connection on request: ``reconnecting`` false, session kept."""
        async with self.ops:
            self._cancel_reconnect()
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
            self._cancel_reconnect()
            self._quiet = True
            try:
                await self.driver.logout()
            except DriverError as exc:
                log.warning("device.logout_failed", token=self.token, error=str(exc))
            self.qr = None
            self._connected_evt.clear()
            self.row.status = "logged_out"
            self.row.reconnecting = False
            await self._transition("device.logged_out", "connection-error", message="Logged out")

    async def close(self) -> None:
        """Shutdown: stop everything, emit nothing."""
        self._quiet = True
        self._cancel_reconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.driver.close(), 2.5)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump
            self._pump = None

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
            self._schedule_reconnect(immediately=True)
        else:
            r.status, r.reconnecting = "disconnected", False

    # --- actions -------------------------------------------------------------

    async def send_text(self, to_jid: str, text: str) -> SentMessage:
        self._require_connected()
        async with self.send_lock:
            self._require_connected()
            try:
                delay = self.m.settings.typing_delay_ms
                if delay:
                    await self.driver.set_typing(to_jid, True)
                    await asyncio.sleep(delay / 1000)
                sent = await self.driver.send_text(to_jid, text)
                if delay:
                    with contextlib.suppress(DriverError):
                        await self.driver.set_typing(to_jid, False)
            except NotConnectedError as exc:
                raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
            except DriverError as exc:
                raise ApiError("SEND_FAILED", f"send failed: {exc}") from exc
            self.row.messages_sent += 1
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

    # --- the pump ------------------------------------------------------------

    async def _run_pump(self) -> None:
        async for ev in self.driver.events():
            try:
                await self._handle(ev)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("device.event_failed", token=self.token, event=type(ev).__name__)

    async def _handle(self, ev: DriverEvent) -> None:
        # The frequent events first: two receipts per send.
        if isinstance(ev, Receipt):
            data = {
                "type": ev.type,
                "messageIds": list(ev.message_ids),
                "from": ev.sender,
                "timestamp": iso(ev.timestamp),
            }
            rows = self.m.router.deliveries("message.receipt", self.row, data)
            if rows:  # an event that changes no device state: its outbox rows alone, stored first
                await self.m.store.enqueue(rows)
                self.m.wake_dispatcher()
            self._publish("message.receipt", data=data)
        elif isinstance(ev, IncomingMessage):
            await self._on_message(ev)
        elif isinstance(ev, Qr):
            first = self.qr is None
            self.qr, self.qr_at = ev.code, time.time()
            self._publish("qrcode", data=ev.code)
            if first:
                self._publish("session_update", data=self.state())
        elif isinstance(ev, PairingCode):
            self.pairing_code = ev.code
            self._publish("pairing-code", data={"code": ev.code})
        elif isinstance(ev, Connected):
            await self._on_connected(ev)
        elif isinstance(ev, Disconnected):
            await self._on_disconnected(ev)
        elif isinstance(ev, LoggedOut):
            self._cancel_reconnect()
            self.qr = None
            self._connected_evt.clear()
            self.connected_mono = None
            self.row.status = "logged_out"
            self.row.reconnecting = False
            await self._transition("device.logged_out", "connection-error", message=ev.reason)
        elif isinstance(ev, HistoryContacts):
            await self._on_history(ev)

    async def _on_connected(self, ev: Connected) -> None:
        # The reconnect loop (if any) ends by itself once its connect() returns.
        self._attempt = 0
        self.qr = None
        self.pairing_code = None
        now = now_iso()
        self.row.status = "connected"
        self.row.reconnecting = False
        self.row.pushname = ev.pushname or self.row.pushname
        self.row.platform = ev.platform or self.row.platform
        self.row.phone = ev.phone or self.row.phone or self.token
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

    async def _on_disconnected(self, ev: Disconnected) -> None:
        if self._quiet or self.row.status == "logged_out":
            return
        was_connected = self.row.status == "connected"
        self._connected_evt.clear()
        self.connected_mono = None
        paired = self.driver.is_paired()
        self.row.status = "disconnected"
        self.row.reconnecting = paired
        self.qr = None
        if was_connected:
            await self._transition("device.disconnected", "connection-error", message=ev.reason)
        else:
            await self._save_and_announce()
            self._publish("connection-error", message=ev.reason)
        log.info("device.disconnected", token=self.token, reason=ev.reason, reconnecting=paired)
        if paired:
            self._schedule_reconnect()

    async def _on_message(self, ev: IncomingMessage) -> None:
        data = {
            "id": ev.id,
            "from": ev.sender,
            "fromName": ev.sender_name,
            "chat": ev.chat,
            "isGroup": ev.is_group,
            "type": ev.type,
            "text": ev.text,
            "timestamp": iso(ev.timestamp),
        }
        ts = now_iso()
        self.row.messages_received += 1
        self.row.last_update = ts
        values, row, router = stats_values(self.row), replace(self.row), self.m.router

        def job(conn: sqlite3.Connection) -> list[ContactRow]:
            save_stats_sync(conn, values)
            new = upsert_contacts_sync(conn, row.token, row.owner_id, [(ev.sender, ev.sender_name)], "message", ts)
            rows = router.deliveries("message.received", row, data, ts)
            for c in new:
                rows += router.deliveries("contacts.new", row, {"phone": c.phone, "name": c.name}, ts)
            enqueue_sync(conn, rows)
            return new

        new = await self.m.store.db.run(job)
        self.m.wake_dispatcher()
        self._publish("message", data=data)
        for c in new:
            self._publish("contacts.new", data={"phone": c.phone, "name": c.name})

    async def _on_history(self, ev: HistoryContacts) -> None:
        ts, row, router = now_iso(), replace(self.row), self.m.router
        batch = [(c.phone, c.name) for c in ev.contacts]

        def job(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            new = upsert_contacts_sync(conn, row.token, row.owner_id, batch, "history", ts)
            data = [c.to_api() for c in new]
            if data:
                enqueue_sync(conn, router.deliveries("contacts.sync", row, data, ts))
            return data

        data = await self.m.store.db.run(job)
        if data:
            self.m.wake_dispatcher()
            self._publish("contacts.sync", data=data)

    # --- plumbing ----------------------------------------------------------------

    async def _transition(self, hook: str, frame: str, data: Any = None, message: str | None = None) -> None:
        """Persist a status change with its webhook, then tell listeners."""
        ts = now_iso()
        self.row.last_update = ts
        values, row, router = device_values(self.row), replace(self.row), self.m.router

        def job(conn: sqlite3.Connection) -> None:
            save_device_sync(conn, values)
            enqueue_sync(conn, router.deliveries(hook, row, None, ts))

        await self.m.store.db.run(job)
        self.m.wake_dispatcher()
        self._publish(frame, data=data, message=message)
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
        self._publish("session_update", data=self.state())
        async with self._changed:
            self._changed.notify_all()

    def _publish(self, event: str, data: Any = None, message: str | None = None) -> None:
        self.m.hub.publish(event, self.token, data, message, self.row.owner_id)

    # --- reconnect -----------------------------------------------------------------

    def _schedule_reconnect(self, immediately: bool = False) -> None:
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.create_task(
                self._reconnect_loop(immediately), name=f"reconnect-{self.token}", context=contextvars.Context()
            )

    def _cancel_reconnect(self) -> None:
        task, self._reconnect = self._reconnect, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _reconnect_loop(self, immediately: bool) -> None:
        s = self.m.settings
        while True:
            if not immediately or self._attempt:
                delay = min(s.reconnect_max_ms, s.reconnect_base_ms * 2 ** min(self._attempt, 30)) / 1000
                await asyncio.sleep(delay * random.uniform(0.8, 1.0))
            if self.row.status == "connected":
                return
            self._attempt += 1
            try:
                async with self.m.connect_slots:
                    await asyncio.wait_for(self.driver.connect(self.row.method), s.connect_timeout_ms / 1000)  # type: ignore[arg-type]
                self.m.reconnects += 1
                return
            except (ConnectError, TimeoutError) as exc:
                log.info("device.reconnect_failed", token=self.token, attempt=self._attempt, error=str(exc))
            except DriverError as exc:
                log.warning("device.reconnect_error", token=self.token, error=str(exc))


class DeviceManager:
    """Owns every Device: create, find, restore at start, close at shutdown."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        hub: Hub,
        router: WebhookRouter,
        driver_factory: DriverFactory,
        wake_dispatcher: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.hub = hub
        self.router = router
        self.driver_factory = driver_factory
        self.wake_dispatcher = wake_dispatcher
        self.devices: dict[str, Device] = {}
        self.started = False
        self.reconnects = 0
        self.connect_slots = asyncio.Semaphore(64)
        self._creating: dict[str, asyncio.Lock] = {}
        self._unsaved: dict[str, Device] = {}  # send counters not yet in the registry
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Load the registry and reconnect every paired device in the background."""
        for row in await self.store.all_devices():
            device = self._make(row)
            device.restore()
        self.started = True
        log.info("devices.restored", count=len(self.devices))

    async def stop(self) -> None:
        self.started = False
        await asyncio.gather(*(d.close() for d in list(self.devices.values())), return_exceptions=True)
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        await asyncio.gather(*self._flushes, return_exceptions=True)
        await self.flush_stats()

    # --- send counters: write-behind -------------------------------------------------

    def stats_changed(self, device: Device) -> None:
        """A send moved ``device``'s counter. The registry gets it within ``STATS_FLUSH_S``,
        batched with every other device's, so a send never waits for a disk write
        (a crash loses at most that much counting; a graceful stop loses none)."""
        self._unsaved[device.token] = device
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_timer is None and self.started:
            self._flush_timer = asyncio.get_running_loop().call_later(STATS_FLUSH_S, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_timer = None
        task = asyncio.create_task(self.flush_stats(), name="stats-flush")
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush_stats(self) -> None:
        """Write the counters of every device with unsaved sends (one transaction)."""
        batch, self._unsaved = self._unsaved, {}
        values = [stats_values(d.row) for d in batch.values()]
        if not values:
            return

        def job(conn: sqlite3.Connection) -> None:
            for v in values:
                save_stats_sync(conn, v)

        try:
            await self.store.db.run(job)
        except Exception:
            log.exception("devices.stats_flush_failed", devices=len(values))
            for token, device in batch.items():  # kept for the next flush
                self._unsaved.setdefault(token, device)
            self._schedule_flush()

    def _make(self, row: DeviceRow) -> Device:
        device = Device(self, row, self.driver_factory(row.token))
        self.devices[row.token] = device
        device.start_pump()
        return device

    def get(self, token: str) -> Device | None:
        return self.devices.get(token)

    def visible(self, owner_id: int | None, is_admin: bool) -> list[Device]:
        return [d for d in self.devices.values() if is_admin or d.row.owner_id == owner_id]

    async def open(
        self,
        token: str,
        method: Method,
        owner_id: int | None,
        is_admin: bool,
        fields: dict[str, Any],
    ) -> Device:
        """``POST /devices``: create the device if new, then pair or reconnect it."""
        lock = self._creating.setdefault(token, asyncio.Lock())
        async with lock:
            device = self.devices.get(token)
            if device is not None and not is_admin and device.row.owner_id != owner_id:
                raise ApiError("DEVICE_TAKEN", "this token is a device of another account")
            if device is None:
                now = now_iso()
                row = DeviceRow(token=token, status="pairing", created_at=now, last_update=now, owner_id=owner_id)
                for key, value in fields.items():
                    setattr(row, key, value)
                device = self._make(row)
            elif fields:
                for key, value in fields.items():
                    setattr(device.row, key, value)
        await device.connect(method)
        return device

    async def remove(self, token: str, purge: bool) -> None:
        """``DELETE /devices/{token}``: logout, delete the session and the device."""
        device = self.devices.get(token)
        if device is None:
            return
        await device.logout()
        await device.close()
        self.devices.pop(token, None)
        self._creating.pop(token, None)
        await self.store.delete_device(token)
        if purge:
            await self.store.delete_contacts(token)

    def status_counts(self) -> dict[str, int]:
        counts = {"pairing": 0, "connected": 0, "disconnected": 0, "logged_out": 0}
        for d in self.devices.values():
            counts[d.row.status] = counts.get(d.row.status, 0) + 1
        return counts

"""The device manager: owns every :class:`~gateway.devices.device.Device`.

It creates devices (``POST /devices``), finds them, restores them from the
store at start-up (paired ones reconnect in the background) and closes them
quietly at shutdown, then writes the send counters still unsaved.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from gateway.api.errors import ApiError, device_moving
from gateway.devices import views
from gateway.devices.counters import SendCounters
from gateway.devices.device import Device
from gateway.drivers.base import Driver, Method
from gateway.events import Hub
from gateway.media.service import MediaService
from gateway.messages.record import Recorder
from gateway.settings import Settings
from gateway.store import DeviceRow, Store
from gateway.store.conn import Conn
from gateway.timestamps import now_iso
from gateway.webhooks.routing import WebhookRouter

log = structlog.get_logger("gateway.devices")

DriverFactory = Callable[[str, str | None], Driver]
"""Builds a device's driver from its token and the WhatsApp JID the registry recorded for it (or None)."""


class ReceiptListener(Protocol):
    """Told of every receipt of the devices it listens to: first inside the transaction that records it,
    then once it committed."""

    def listens_to(self, token: str) -> bool: ...

    def in_transaction(self, conn: Conn, token: str, ids: tuple[str, ...], status: str, at: float) -> object: ...

    def committed(self, result: object) -> None: ...


class Placement(Protocol):
    """Where devices run in a cluster (:class:`gateway.cluster.ownership.Ownership`); None on a single node."""

    node: str

    @property
    def retry_after_s(self) -> int: ...

    def owner_of(self, token: str) -> str | None: ...

    def account_of(self, token: str) -> tuple[bool, int | None]: ...

    async def claim(self, token: str) -> bool: ...

    async def forget(self, token: str) -> None: ...


class DeviceManager:
    """Owns every Device: create, find, restore at start, close at shutdown.

    In a cluster (``placement`` given) it owns only the devices whose lease this node holds: it is the
    placement's listener, restoring a device when the lease is acquired and stopping its connection
    (never logging it out) when the lease is released or lost.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        hub: Hub,
        router: WebhookRouter,
        driver_factory: DriverFactory,
        wake_dispatcher: Callable[[], None] = lambda: None,
        media: MediaService | None = None,
        placement: Placement | None = None,
        before_adopt: Callable[[str], Awaitable[None]] | None = None,
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
        self.connect_slots = asyncio.Semaphore(64)  # reconnect dials in flight, gateway-wide
        self.counters = SendCounters(store)
        self.media = media  # the pumps download incoming media through it (None: not downloaded)
        self.recorder = Recorder(settings.message_retention_days)  # stores what devices send
        # Services that follow receipts in the same transaction (campaigns), registered at start-up.
        self.receipt_listeners: list[ReceiptListener] = []
        self._creating: dict[str, asyncio.Lock] = {}
        self.placement = placement
        # Run before a device moved here is built (the sandbox reloads its pairing from the store).
        self.before_adopt = before_adopt

    async def start(self) -> None:
        """Load the store and reconnect every paired device in the background (in a cluster, only the
        devices this node acquires, as it acquires them)."""
        for row in [] if self.placement is not None else await self.store.all_devices():
            device = self._make(row)
            device.restore()
        self.started = True
        self.counters.start()
        log.info("devices.restored", count=len(self.devices))

    async def stop(self) -> None:
        self.started = False
        await asyncio.gather(*(d.close() for d in list(self.devices.values())), return_exceptions=True)
        await self.counters.stop()

    def stats_changed(self, device: Device) -> None:
        """A send moved ``device``'s counter (written behind, see :mod:`gateway.devices.counters`)."""
        self.counters.changed(device)

    def _make(self, row: DeviceRow) -> Device:
        device = Device(self, row, self.driver_factory(row.token, row.jid))
        self.devices[row.token] = device
        device.start_pump()
        return device

    def get(self, token: str) -> Device | None:
        return self.devices.get(token)

    def check_elsewhere(self, token: str, can_see: Callable[[int | None], bool]) -> None:
        """A device that is not here but is the cluster's (and the caller's to see): 503 DEVICE_MOVING
        — another node runs it, or none does while it changes hands — with ``Retry-After``."""
        if self.placement is None or token in self.devices:
            return
        known, account = self.placement.account_of(token)
        if not known or not can_see(account):
            return
        where = "is being moved to another node" if self.placement.owner_of(token) is None else "runs on another node"
        raise device_moving(token, self.placement.retry_after_s, where)

    # --- the placement's listener (cluster mode) -------------------------------------------------

    async def on_acquired(self, token: str) -> None:
        """This node now holds ``token``'s lease: build the device from the store and bring it up as at a
        restart (a paired one reconnects and emits ``device.connected`` again)."""
        if token in self.devices:
            return
        if self.before_adopt is not None:
            await self.before_adopt(token)
        row = await self.store.get_device(token)
        if row is None or token in self.devices:  # not written yet (created here) or deleted meanwhile
            return
        self._make(row).restore()

    async def on_released(self, token: str) -> None:
        """This node no longer holds ``token``'s lease: stop its connection at once (never a logout: the
        session is the next owner's), then its pump; its unsaved counters go first."""
        device = self.devices.get(token)
        if device is None:
            return
        await device.close()
        with contextlib.suppress(Exception, TimeoutError):  # its counters while the lease still covers them
            await asyncio.wait_for(self.counters.flush(), 1.0)
        self.devices.pop(token, None)
        self._creating.pop(token, None)

    def visible(self, owner_id: int | None, is_admin: bool) -> list[Device]:
        return [d for d in self.devices.values() if is_admin or d.row.owner_id == owner_id]

    async def listed(self, owner_id: int | None, is_admin: bool) -> list[dict[str, Any]]:
        """``GET /devices`` and the WebSocket ``devices`` frame: the caller's devices. In a cluster every
        node's — those running here as they are now, the others as their node last stored them in the
        shared registry — ordered by creation; alone, this process's in the order they were opened."""
        here = [views.summary(d) for d in self.visible(owner_id, is_admin)]
        if self.placement is None:
            return here
        seen = {s["token"] for s in here}
        others = [
            views.row_summary(r)
            for r in await self.store.all_devices()
            if r.token not in seen and (is_admin or r.owner_id == owner_id)
        ]
        return sorted(here + others, key=lambda s: (s["createdAt"] or "", s["token"]))

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
            if self.placement is not None and token not in self.devices and not await self.placement.claim(token):
                self.check_elsewhere(token, lambda account: is_admin or account == owner_id)
                raise ApiError(
                    "DEVICE_MOVING",
                    f"device {token} runs on another node; try again shortly",
                    {"Retry-After": str(self.placement.retry_after_s)},
                )
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
        # The token may come back as another account's device: its messages must not.
        await self.store.delete_device_messages(token)
        if purge:
            await self.store.delete_contacts(token)
        if self.placement is not None:
            await self.placement.forget(token)

    def status_counts(self) -> dict[str, int]:
        counts = {"pairing": 0, "connected": 0, "disconnected": 0, "logged_out": 0}
        for d in self.devices.values():
            counts[d.row.status] = counts.get(d.row.status, 0) + 1
        return counts

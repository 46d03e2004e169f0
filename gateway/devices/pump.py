"""The event pump: one task per device consumes its driver's events, in order.

For every event the pump stores what it changes and the webhook outbox rows it
causes in one transaction (a unit of work of the store,
:mod:`gateway.store.events`, group-committed with every other device's), then publishes WebSocket frames and wakes the
dispatcher. Events that move the device's status (connected, disconnected,
logged out, a QR, a pairing code) are handed to the device's state machine;
the data events (receipts, messages, history contacts) are handled here.

Devices share nothing but the store, so a stuck device never delays another;
an event that fails is logged and the pump goes on with the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog

from gateway.drivers.base import (
    Connected,
    Disconnected,
    DriverEvent,
    HistoryContacts,
    IncomingMedia,
    IncomingMessage,
    LoggedOut,
    MessageEdited,
    MessageRevoked,
    PairingCode,
    Qr,
    ReactionReceived,
    Receipt,
    Replaced,
)
from gateway.media import incoming
from gateway.messages import record
from gateway.messages.record import status_json
from gateway.messages.shape import edited_json, incoming_json, reaction_json, revoked_json
from gateway.store import ContactRow, NewDelivery
from gateway.store.messages import StatusChange
from gateway.timestamps import iso, now_iso

if TYPE_CHECKING:
    from gateway.devices.device import Device

log = structlog.get_logger("gateway.devices")


class Pump:
    """The task that feeds one device's driver events into the device."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self._task: asyncio.Task[None] | None = None
        self._pending: asyncio.Future[Any] | None = None  # the last receipt queued, not yet committed

    def start(self) -> None:
        if self._task is None:
            # A fresh context: the pump outlives the request that created it, and
            # must not log under that request's id.
            self._task = asyncio.create_task(
                self._run(), name=f"pump-{self.device.token}", context=contextvars.Context()
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        device = self.device
        async for ev in device.driver.events():
            try:
                await self.handle(ev)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("device.event_failed", token=device.token, event=type(ev).__name__)

    async def handle(self, ev: DriverEvent) -> None:
        device = self.device
        # The frequent events first: two receipts per send.
        if isinstance(ev, Receipt):
            await self._on_receipt(ev)
            return
        await self._settle()
        if isinstance(ev, IncomingMessage):
            await self._on_message(ev)
        elif isinstance(ev, Qr):
            device.on_qr(ev.code)
        elif isinstance(ev, PairingCode):
            device.on_pairing_code(ev.code)
        elif isinstance(ev, Connected):
            await device.on_connected(ev)
        elif isinstance(ev, Disconnected):
            await device.on_disconnected(ev)
        elif isinstance(ev, LoggedOut):
            await device.on_logged_out(ev)
        elif isinstance(ev, Replaced):
            await device.on_replaced(ev)
        elif isinstance(ev, HistoryContacts):
            await self._on_history(ev)
        elif isinstance(ev, ReactionReceived):
            await record.action(device, "message.reaction", reaction_json(ev), record.reacted(device, ev))
        elif isinstance(ev, MessageEdited):
            at = ev.timestamp.timestamp()
            token = device.token
            store = device.m.store
            await record.action(
                device,
                "message.edited",
                edited_json(ev),
                lambda rows: store.edit_message(token, ev.id, ev.text, at, rows),
            )
        elif isinstance(ev, MessageRevoked):
            at = ev.timestamp.timestamp()
            token = device.token
            store = device.m.store
            await record.action(
                device, "message.revoked", revoked_json(ev), lambda rows: store.revoke_message(token, ev.id, at, rows)
            )

    async def _on_receipt(self, ev: Receipt) -> None:
        device = self.device
        m = device.m
        data = {
            "type": ev.type,
            "messageIds": list(ev.message_ids),
            "from": ev.sender,
            "timestamp": iso(ev.timestamp),
        }
        rows = m.router.deliveries("message.receipt", device.row, data)
        # as they are now: one may stop listening before the commit
        listeners = tuple(li for li in m.receipt_listeners if li.listens_to(device.token))
        if not m.recorder.enabled and not listeners:
            await self._settle()  # a campaign's receipts may still be committing
            if rows:  # an event that changes no device state: its outbox rows alone, stored first
                await m.store.enqueue(rows)
                m.wake_dispatcher()
            device.publish("message.receipt", data=data)
            return
        router, token, ids = m.router, device.token, ev.message_ids
        status, stamp = ev.type, ev.timestamp.timestamp()
        # The row as it is now, for the status webhooks built on the writer's thread: copied only when
        # something subscribes to them (the usual receipt has no one to tell).
        row = replace(device.row) if router.targets("message.status", device.row) else None

        def describe(change: StatusChange) -> tuple[StatusChange, list[NewDelivery]]:
            # The frame's data is built on the loop, and only when someone listens (publish_lazy).
            return change, (router.deliveries("message.status", row, status_json(change)) if row is not None else [])

        # The status moves in the same transaction as the events that tell of it, and so do the
        # listeners' records (a campaign's recipients). Queued, not awaited: the next receipts join
        # the same commit; every other event waits for them first (:meth:`_settle`), so frames keep
        # the device's order.
        also = [
            partial(listener.in_transaction, token=token, ids=ids, status=status, at=stamp) for listener in listeners
        ]
        future, index = m.store.submit_receipt(token, ids, status, stamp, rows, describe, m.recorder.enabled, also)
        self._pending = future

        def committed(done: asyncio.Future[list[Any]]) -> None:
            if done.cancelled():
                return
            exc = done.exception()
            if exc is not None:
                log.error("device.receipt_failed", token=token, error=str(exc))
                return
            changes, heard = done.result()[index]
            if rows or (changes and row is not None):
                m.wake_dispatcher()
            device.publish("message.receipt", data=data)
            device.publish_each("message.status", changes, status_json)
            for listener, result in zip(listeners, heard, strict=True):
                listener.committed(result)

        future.add_done_callback(committed)

    async def _settle(self) -> None:
        """Wait until the receipts queued so far are committed and told (commits settle in order)."""
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            await asyncio.wait((pending,))

    async def _on_message(self, ev: IncomingMessage) -> None:
        device = self.device
        m = device.m
        data = incoming_json(ev)
        if ev.media is not None:
            # Downloaded before the message is recorded (bounded: MEDIA_FETCH_TIMEOUT_MS); a failed
            # download is reported as such, never holds the message back.
            data["media"] = await self._media(ev.id, ev.media)
        stored = record.incoming(device.token, ev, data) if m.recorder.enabled else None
        if ev.from_me:
            # Typed on the linked phone: the other side of the conversation, not a received message.
            store = m.store
            await record.action(
                device, "message.sent", data, (lambda rows: store.record_message(stored, rows)) if stored else None
            )
            return
        ts = now_iso()
        device.row.messages_received += 1
        device.row.last_update = ts
        row, router = replace(device.row), m.router
        # A sender known only by an unresolvable LID has no phone to file a contact under.
        senders = [(ev.sender, ev.sender_name)] if ev.sender else []

        def deliveries(new: list[ContactRow]) -> list[NewDelivery]:
            rows = router.deliveries("message.received", row, data, ts)
            for c in new:
                rows += router.deliveries("contacts.new", row, {"phone": c.phone, "name": c.name}, ts)
            return rows

        new = await m.store.record_incoming(row, senders, ts, stored, deliveries)
        m.wake_dispatcher()
        device.publish("message", data=data)
        for c in new:
            device.publish("contacts.new", data={"phone": c.phone, "name": c.name})

    async def _media(self, message_id: str, media: IncomingMedia) -> dict[str, Any]:
        device = self.device
        svc = device.m.media
        row = None
        if svc is not None:
            owner = device.row.owner_id
            if svc.settings.media_auto_download:
                driver = device.driver
                row = await incoming.download(svc, owner, media, lambda: driver.download(media.ref))
            if row is None:  # kept for POST /devices/{token}/messages/{id}/media
                await incoming.remember(svc, device.token, message_id, owner, media)
        return incoming.report(svc, media, row)

    async def _on_history(self, ev: HistoryContacts) -> None:
        device = self.device
        m = device.m
        ts, row, router = now_iso(), replace(device.row), m.router
        batch = [(c.phone, c.name) for c in ev.contacts]

        def deliveries(new: list[ContactRow]) -> list[NewDelivery]:
            return router.deliveries("contacts.sync", row, [c.to_api() for c in new], ts)

        data = [c.to_api() for c in await m.store.record_history(row.token, row.owner_id, batch, ts, deliveries)]
        if data:
            m.wake_dispatcher()
            device.publish("contacts.sync", data=data)

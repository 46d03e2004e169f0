"""Recording messages in the store as they are sent and received (CONTRACT §12).

The device pump stores an incoming message in the same group-commit job as
its webhook outbox rows (:func:`incoming`); a send stores its message by
queueing a job on the group commit *without awaiting it* (:meth:`Recorder.sent`),
so ``POST /messages`` pays no extra write: the row rides the next commit with
whatever else is being written. Because jobs run in queue order, the receipts
that follow a send always find its row.

Each status change of an outgoing message is a ``message.status`` event
``{id, chat, status, at}``: stored as outbox rows in the job that changes the
status, then published to WebSocket listeners once the job has committed.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from gateway.drivers.base import IncomingMessage, OutgoingMessage, ReactionReceived, SentMessage
from gateway.messages.ports import MessagingDevice
from gateway.messages.shape import incoming_json, outgoing_json
from gateway.store import NewDelivery
from gateway.store.messages import NewMessage, StatusChange
from gateway.timestamps import iso, iso_ts

log = structlog.get_logger("gateway.messages")


def status_json(change: StatusChange) -> dict[str, Any]:
    return {"id": change.id, "chat": change.chat, "status": change.status, "at": iso_ts(change.at)}


def incoming(device_token: str, ev: IncomingMessage, data: dict[str, Any] | None = None) -> NewMessage:
    """A received message (or one typed on the linked phone: ``from_me``) as a row to store; ``data``
    is its event data when already built (with the media service's ``media``)."""
    data = data if data is not None else incoming_json(ev)
    payload: dict[str, Any] = {
        k: data[k] for k in ("media", "location", "contacts", "poll", "replyTo", "mentions") if k in data
    }
    if "media" in payload:  # its link is signed again whenever the message is read (it expires)
        payload["media"] = {k: v for k, v in payload["media"].items() if k != "url"}
    ts = ev.timestamp.timestamp()
    if ev.from_me:
        return NewMessage(
            token=device_token,
            id=ev.id,
            chat=ev.chat,
            direction="out",
            type=ev.type,
            text=ev.text,
            ts=ts,
            status="sent",
            history=(("sent", ts),),
            from_me=True,
            sender=ev.sender,
            payload=payload or None,
            read_chat=True,
        )
    return NewMessage(
        token=device_token,
        id=ev.id,
        chat=ev.chat,
        direction="in",
        type=ev.type,
        text=ev.text,
        ts=ts,
        status="received",
        history=(("received", ts),),
        sender=ev.sender,
        sender_lid=ev.sender_lid,
        sender_name=ev.sender_name,
        payload=payload or None,
    )


class Recorder:
    """Stores what devices send, behind the send (see the module docstring)."""

    def __init__(self, retention_days: int) -> None:
        self.enabled = retention_days > 0
        self.clock = time.time
        # Per queued job, what to tell once it commits: one callback per job, not one per send.
        self._telling: dict[asyncio.Future[list[Any]], list[_Tell]] = {}

    def sent(
        self,
        device: MessagingDevice,
        to: str,
        text: str | None,
        message: OutgoingMessage | None,
        sent: SentMessage,
        started: float,
    ) -> None:
        """A send succeeded: store it as pending (when accepted) → sent, and tell of ``sent``."""
        if not self.enabled:
            return
        at = sent.timestamp.timestamp()
        self._submit(
            device,
            NewMessage(
                token=device.token,
                id=sent.id,
                chat=to,
                direction="out",
                type="text" if message is None else message.type,
                text=text,
                ts=at,
                status="sent",
                history=(("pending", started), ("sent", at)),
                from_me=True,
                sender=device.row.phone or device.token,
                payload=outgoing_json(message) if message is not None else None,
            ),
            StatusChange(sent.id, to, "sent", at),
        )

    def failed(
        self,
        device: MessagingDevice,
        to: str,
        text: str | None,
        message: OutgoingMessage | None,
        error: str,
        started: float,
    ) -> str | None:
        """A send failed: store it as ``failed`` with the error, under an id of the gateway's own."""
        if not self.enabled:
            return None
        at = self.clock()
        msg_id = "GW" + secrets.token_hex(9).upper()  # never sent, so WhatsApp gave it no id
        self._submit(
            device,
            NewMessage(
                token=device.token,
                id=msg_id,
                chat=to,
                direction="out",
                type="text" if message is None else message.type,
                text=text,
                ts=at,
                status="failed",
                history=(("pending", started), ("failed", at)),
                from_me=True,
                sender=device.row.phone or device.token,
                payload=outgoing_json(message) if message is not None else None,
                error=error,
            ),
            StatusChange(msg_id, to, "failed", at),
        )
        return msg_id

    def _submit(self, device: MessagingDevice, row: NewMessage, change: StatusChange) -> None:
        m = device.m
        router = m.router
        # Built now (no copy of the row needed), and only when some webhook subscribes.
        deliveries = (
            router.deliveries("message.status", device.row, status_json(change))
            if router.targets("message.status", device.row)
            else []
        )
        reaction = (row.payload or {}).get("reaction") if row.status == "sent" else None
        # this device's reaction, shown on the message it reacts to
        react = (reaction["messageId"], reaction["emoji"], iso_ts(row.ts)) if reaction is not None else None
        future, index = m.store.submit_sent(row, deliveries, react)
        telling = self._telling.get(future)
        if telling is None:
            telling = self._telling[future] = []
            future.add_done_callback(self._committed)
        telling.append((device, change, index, bool(deliveries)))

    def _committed(self, future: asyncio.Future[list[Any]]) -> None:
        """A job of sends committed: each new message's ``message.status`` told (and webhooks woken)."""
        telling = self._telling.pop(future, [])
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            for device, change, _index, _rows in telling:
                log.error("messages.record_failed", token=device.token, id=change.id, error=str(exc))
            return
        new = future.result()
        wake = None
        told: dict[MessagingDevice, list[StatusChange]] = {}
        for device, change, index, rows in telling:
            if new[index]:
                if rows:
                    wake = device.m
                told.setdefault(device, []).append(change)
        for device, changes in told.items():  # built only when someone listens
            device.publish_each("message.status", changes, status_json)
        if wake is not None:
            wake.wake_dispatcher()


_Tell = tuple[MessagingDevice, StatusChange, int, bool]  # the device, the change, its index in the job, has rows


Change = Callable[[Sequence[NewDelivery]], Awaitable[object]]


async def action(device: MessagingDevice, event: str, data: dict[str, Any], change: Change | None = None) -> None:
    """An edit, a revoke, a reaction or a message typed on the phone (from the driver), or an edit or
    revoke made through the API: what it changes in the message store (``change``: a unit of work of
    the store, given the webhook outbox rows to store with it, in one transaction), then its
    WebSocket frame."""
    m = device.m
    rows = m.router.deliveries(event, device.row, data)
    if change is not None and m.recorder.enabled:
        await change(rows)
    elif rows:
        await m.store.enqueue(rows)
    if rows:
        m.wake_dispatcher()
    device.publish(event, data=data)


def reacted(device: MessagingDevice, ev: ReactionReceived) -> Change:
    """Store a reaction on the message it reacts to (when that message is stored)."""
    at, store, token = iso(ev.timestamp), device.m.store, device.token
    return lambda rows: store.react_message(token, ev.message_id, ev.sender, ev.emoji, ev.from_me, at, rows)


def status_deliveries(
    device: MessagingDevice, changes: list[StatusChange]
) -> tuple[list[NewDelivery], list[dict[str, Any]]]:
    """The outbox rows and frame data of status changes (computed on the loop, stored in the job)."""
    row = device.row
    datas = [status_json(c) for c in changes]
    rows: list[NewDelivery] = []
    for d in datas:
        rows += device.m.router.deliveries("message.status", row, d)
    return rows, datas

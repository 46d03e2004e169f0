"""Webhook event bodies (CONTRACT §6), for the OpenAPI document's top-level ``webhooks``.

The event pump builds these bodies (``gateway.devices``); the document describes them
from here, and ``tests/test_openapi.py`` checks real deliveries against these schemas.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from gateway.api.models.base import Model, described
from gateway.api.models.responses import Contact, Time


class MessageReceived(Model):
    id: str
    sender: Annotated[str, described("the sender's phone digits (never a LID)")] = msgspec.field(name="from")
    from_name: str | None
    chat: Annotated[str, described("the chat's JID")]
    is_group: bool
    type: str
    text: str | None
    timestamp: Time


class MessageReceipt(Model):
    type: Literal["delivered", "read", "played"]
    message_ids: list[str]
    sender: str | None = msgspec.field(name="from")
    timestamp: Time


class ContactNew(Model):
    phone: str
    name: str | None


class Event(Model):
    """The common body: ``{event, token, data, timestamp}`` (event time, RFC 3339)."""

    event: str
    token: str
    timestamp: Time


class DeviceConnected(Event):
    event: Literal["device.connected"]
    data: None


class DeviceDisconnected(Event):
    event: Literal["device.disconnected"]
    data: None


class DeviceLoggedOut(Event):
    event: Literal["device.logged_out"]
    data: None


class MessageReceivedEvent(Event):
    event: Literal["message.received"]
    data: MessageReceived


class MessageReceiptEvent(Event):
    event: Literal["message.receipt"]
    data: MessageReceipt


class ContactsNewEvent(Event):
    event: Literal["contacts.new"]
    data: ContactNew


class ContactsSyncEvent(Event):
    event: Literal["contacts.sync"]
    data: list[Contact]


EVENTS: dict[str, type[Event]] = {
    "device.connected": DeviceConnected,
    "device.disconnected": DeviceDisconnected,
    "device.logged_out": DeviceLoggedOut,
    "message.received": MessageReceivedEvent,
    "message.receipt": MessageReceiptEvent,
    "contacts.new": ContactsNewEvent,
    "contacts.sync": ContactsSyncEvent,
}

"""Webhook event bodies (CONTRACT §6), for the OpenAPI document's top-level ``webhooks``.

The event pump builds these bodies (``gateway.devices``); the document describes them
from here, and ``tests/test_openapi.py`` checks real deliveries against these schemas.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from gateway.api.models.base import Model
from gateway.api.models.campaigns import CampaignProgress
from gateway.api.models.messages import MessageData, MessageEdited, MessageReaction, MessageRevoked, MessageStatus
from gateway.api.models.responses import Contact, Time

MessageReceived = MessageData  # the same shape for message.received and message.sent (§11)


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


class MessageSentEvent(Event):
    """A message typed on the linked phone (``fromMe: true``), in the shape of ``message.received``."""

    event: Literal["message.sent"]
    data: MessageData


class MessageStatusEvent(Event):
    event: Literal["message.status"]
    data: MessageStatus


class MessageEditedEvent(Event):
    event: Literal["message.edited"]
    data: MessageEdited


class MessageRevokedEvent(Event):
    event: Literal["message.revoked"]
    data: MessageRevoked


class MessageReactionEvent(Event):
    event: Literal["message.reaction"]
    data: MessageReaction


class ContactsNewEvent(Event):
    event: Literal["contacts.new"]
    data: ContactNew


class ContactsSyncEvent(Event):
    event: Literal["contacts.sync"]
    data: list[Contact]


class CampaignEvent(Event):
    """``campaign``: a campaign's progress, at most once a second per campaign, and at every status change."""

    event: Literal["campaign"]
    data: CampaignProgress


EVENTS: dict[str, type[Event]] = {
    "device.connected": DeviceConnected,
    "device.disconnected": DeviceDisconnected,
    "device.logged_out": DeviceLoggedOut,
    "message.received": MessageReceivedEvent,
    "message.receipt": MessageReceiptEvent,
    "message.sent": MessageSentEvent,
    "message.status": MessageStatusEvent,
    "message.edited": MessageEditedEvent,
    "message.revoked": MessageRevokedEvent,
    "message.reaction": MessageReactionEvent,
    "contacts.new": ContactsNewEvent,
    "contacts.sync": ContactsSyncEvent,
    "campaign": CampaignEvent,
}

"""The ``data`` of every JSON success response, one Struct per shape.

Routes build these and :func:`gateway.api.envelope.ok` encodes them; shapes that a
service already produces as a dict (a device's state, which the WebSocket sends too)
are converted with :func:`of`, which refuses unknown keys, so a field added on one
side only fails the suite instead of drifting from the document.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict, TypeVar

import msgspec

from gateway.api.models.base import DEVICE_STATUSES, Model, described, rules
from gateway.api.models.requests import EventName

M = TypeVar("M", bound=Model)

Time = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]
# Enums as documented strings: the values come from services typed ``str``.
DeviceStatus = Annotated[str, rules(enum=list(DEVICE_STATUSES))]
PairMethod = Annotated[str, rules(enum=["qr", "code"])]
Events = list[EventName] | None


def of(model: type[M], data: Any) -> M:
    """A service's dict (camelCase keys) as ``model``."""
    return msgspec.convert(data, model)


# --- devices -----------------------------------------------------------------------------------


class DeviceInfo(Model):
    pushname: str | None
    platform: str | None
    phone_masked: str | None


class DeviceStats(Model):
    messages_sent: int
    messages_received: int


class DeviceState(Model):
    """A device as ``GET /devices/{token}`` shows it (and the WebSocket's ``session_update``)."""

    token: str
    status: DeviceStatus
    reconnecting: bool
    ready: bool
    authenticated: bool
    has_qr: bool = msgspec.field(name="hasQR")
    pairing_code: Annotated[str | None, described("while pairing with method `code`")]
    info: DeviceInfo
    uptime: Annotated[float, described("seconds connected")]
    stats: DeviceStats
    last_update: Time
    name: str | None
    webhook_url: str | None
    webhook_events: Events
    webhook_secret_set: Annotated[
        bool, described("whether the device has a webhook secret of its own (the secret itself is never shown)")
    ]
    last_error: Annotated[
        str | None,
        described(
            "why the last connection attempt failed or the connection was lost (the dial error, `Disconnected`, "
            "`Logged out`); null once connected. With `authenticated: false` the device was never linked"
        ),
    ]


class DeviceSummary(Model):
    token: str
    name: str | None
    status: DeviceStatus
    method: PairMethod
    pushname: str | None
    created_at: Time
    connected_at: Time | None


class DeviceList(Model):
    devices: list[DeviceSummary]


class DeviceOpened(Model):
    token: str
    method: PairMethod
    status: DeviceStatus


class DeviceDeleted(Model):
    token: str
    status: DeviceStatus
    purged: bool


class QrCode(Model):
    has_qr: bool = msgspec.field(name="hasQR")
    qr: Annotated[str | None, described("the raw QR string (`2@…`); render it, or use the PNG/SVG downloads")]


class Group(Model):
    jid: str
    name: str | None
    topic: str | None
    owner: str | None
    participant_count: int
    is_admin: bool
    is_super_admin: bool


class GroupList(Model):
    groups: list[Group]
    count: int


# --- media -------------------------------------------------------------------------------------


class MediaStored(Model):
    id: Annotated[str, rules(examples=["med_3f2a9c0d1e4b5a6978a1b2c3"])]
    mimetype: Annotated[str, described("detected from the bytes")]
    size: int
    sha256: str
    filename: str | None
    expires_at: Time


class MediaDeleted(Model):
    id: str
    deleted: bool


# --- messages, validation ------------------------------------------------------------------------


class MessageSent(TypedDict):
    """A TypedDict, not a Struct: ``POST /messages`` is the hot path, and orjson encodes a dict
    in half the time msgspec takes for a Struct inside the envelope (0.68 vs 1.17 µs here).
    mypy still holds the route to these keys."""

    messageId: str
    timestamp: Time


class PhoneValidation(Model):
    phone: str
    is_on_whatsapp: bool = msgspec.field(name="isOnWhatsApp")
    jid: str | None
    verified_name: str | None
    cached: bool


class CacheCleared(Model):
    cleared: int


# --- contacts, deliveries ---------------------------------------------------------------------


class Contact(Model):
    phone: str
    name: str | None
    source: Annotated[str, rules(enum=["message", "history"])]
    first_seen: Time
    last_seen: Time


class ContactPage(Model):
    contacts: list[Contact]
    total: int
    limit: int
    offset: int


class Delivery(Model):
    id: int
    event: str
    token: str | None
    url: str
    status: Annotated[str, rules(enum=["pending", "delivered", "failed"])]
    attempts: int
    last_error: str | None
    next_attempt_at: Time | None
    created_at: Time
    delivered_at: Time | None


class DeliveryList(Model):
    deliveries: list[Delivery]


# --- health ---------------------------------------------------------------------------------------


class Probe(Model):
    status: Annotated[str, rules(enum=["live", "ready"])]


class DeviceBrief(Model):
    token: str
    status: DeviceStatus


class NodeBrief(Model):
    id: str
    devices: Annotated[list[str], described("the tokens this node runs")]


class HealthDetail(Model):
    uptime: Annotated[float, described("seconds since start")]
    tasks: int
    threads: int
    memory_rss: Annotated[int, described("bytes")]
    driver: Annotated[str, rules(enum=["neonize", "sandbox"])]
    device_count: int
    devices: list[DeviceBrief]
    node: Annotated[str, described("this node's id (`NODE_ID`)")]
    nodes: Annotated[list[NodeBrief], described("the live nodes and the devices each runs (one on a single node)")]


# --- sandbox --------------------------------------------------------------------------------------


class HistorySimulated(Model):
    token: str
    count: int


# --- accounts --------------------------------------------------------------------------------------


class AuthSession(Model):
    token: Annotated[str, described("session token (also usable as `Authorization: Bearer`)")]
    user_id: int
    username: str
    api_key: Annotated[str | None, described("a key bound to this session")]
    webhook_secret: Annotated[
        str | None,
        described(
            "signup only (null at login): the account's webhook signing secret (`whsec_…`), shown this once; "
            "rotate it with `POST /auth/me/webhook-secret`"
        ),
    ] = None


class WebhookSecret(Model):
    """A new account webhook secret, shown once."""

    webhook_secret: Annotated[str, described("`whsec_` + base64 of 32 random bytes (Standard Webhooks)")]
    previous_valid_until: Annotated[
        Time | None,
        described("until when deliveries also carry a signature made with the secret this one replaced"),
    ]


class SignedOut(Model):
    revoked: Annotated[int, described("sessions revoked")]


class Account(Model):
    user_id: int
    username: str
    email: str
    created_at: Time
    webhook_url: str | None
    webhook_events: Events


class AccountWithDevices(Account):
    device_count: int


class AccountList(Model):
    accounts: list[AccountWithDevices]
    count: int


class AccountDeleted(Model):
    user_id: int
    deleted: bool
    devices_removed: Annotated[list[str], described("tokens of the devices removed")]


class ApiKey(Model):
    id: int
    name: str
    prefix: Annotated[str, described("the key's first characters, to recognise it")]
    created_at: Time
    session_bound: Annotated[bool, described("issued with a login/signup session and revoked with it")]


class NewApiKey(ApiKey):
    key: Annotated[str, described("the key itself: shown only in this answer")]


class ApiKeyList(Model):
    keys: list[ApiKey]


class KeyRevoked(Model):
    id: int
    revoked: bool

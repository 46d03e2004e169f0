"""Request bodies. Decoded by :func:`gateway.api.models.decode.read`; the §2 checks that give
missing or bad values their own codes (MISSING_TOKEN, INVALID_PHONE, …) run after it, in the routes.

``UNSET`` (absent) and ``None`` (null) differ where the contract gives them different meanings:
an absent ``webhookUrl`` leaves the target alone, a null one clears it.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from msgspec import UNSET, UnsetType

from gateway.accounts import USERNAME_RE
from gateway.api.models.base import EVENT_NAMES, MAX_DEVICE_NAME, MAX_KEY_NAME, MAX_TEXT, Body, described, rules
from gateway.api.models.media import MediaIn
from gateway.api.models.messages import Contacts, LocationIn, Mentions, PollIn, ReactionIn

Phone = Annotated[str, described("phone number; normalized to digits", examples=["60123456789"])]
Text = Annotated[str, rules(minLength=1, maxLength=MAX_TEXT, examples=["Hello from wa-gateway"])]
EventName = Annotated[str, rules(enum=EVENT_NAMES)]
WebhookUrl = Annotated[
    str, described("http(s) URL; null clears it", format="uri", examples=["https://crm.example.com/hooks/wa"])
]


class WebhookTarget(Body):
    """A webhook target: ``webhookUrl`` (null clears) and ``webhookEvents`` (null means every event)."""

    webhook_url: WebhookUrl | UnsetType | None = UNSET
    webhook_events: list[EventName] | UnsetType | None = UNSET


WebhookSecret = Annotated[
    str,
    described(
        "write-only: signs deliveries to this device's `webhookUrl` instead of the account's secret; "
        "16 to 256 printable ASCII characters without spaces, a `whsec_` secret must be base64 of at least "
        "16 bytes; null clears it. Never shown again: the device's state says only `webhookSecretSet`",
        minLength=16,
        maxLength=256,
        writeOnly=True,
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ),
]


class DeviceUpdate(WebhookTarget):
    """``PATCH /devices/{token}``: name, webhook target and secret; fields left out stay as they are."""

    name: Annotated[str, rules(maxLength=MAX_DEVICE_NAME)] | UnsetType | None = UNSET
    webhook_secret: WebhookSecret | UnsetType | None = UNSET


class DeviceCreate(DeviceUpdate):
    """``POST /devices``: pair (QR or pairing code) or reconnect a paired device."""

    __required__: ClassVar[tuple[str, ...]] = ("token",)
    token: Phone | None = None
    method: Annotated[str, rules(enum=["qr", "code"], default="qr")] | None = None


class SendMessage(Body):
    """``POST /messages``: exactly one content field (``text``, ``media``, ``location``, ``contacts``,
    ``reaction``, ``poll``), optionally quoting a stored message (``replyTo``) and mentioning people."""

    __required__: ClassVar[tuple[str, ...]] = ("token", "to")
    token: Phone | None = None
    to: (
        Annotated[
            str, described("phone number, or a JID (`…@s.whatsapp.net`, group `…@g.us`)", examples=["60198765432"])
        ]
        | None
    ) = None
    text: Text | None = None
    media: MediaIn | None = None
    location: LocationIn | None = None
    contacts: Contacts | None = None
    reaction: ReactionIn | None = None
    poll: PollIn | None = None
    reply_to: (
        Annotated[str, described("a message id stored for this device: the message quotes it (404 if unknown)")] | None
    ) = None
    mentions: Mentions | None = None


class ValidatePhone(Body):
    """``POST /validate/phone``."""

    __required__: ClassVar[tuple[str, ...]] = ("token", "phone")
    token: Phone | None = None
    phone: Phone | None = None


class Signup(Body):
    """``POST /auth/signup``; the value rules are :func:`gateway.accounts.check_signup`'s."""

    __required__: ClassVar[tuple[str, ...]] = ("username", "email", "password")
    username: Annotated[str, rules(pattern=f"^{USERNAME_RE.pattern}$", examples=["alice"])] | None = None
    email: Annotated[str, rules(format="email", maxLength=254, examples=["alice@example.com"])] | None = None
    password: Annotated[str, rules(format="password", minLength=8, maxLength=1024)] | None = None


class Login(Body):
    """``POST /auth/login``: ``email`` or ``username``, and the password."""

    __required__: ClassVar[tuple[str, ...]] = ("password",)
    username: str | None = None
    email: str | None = None
    password: Annotated[str, rules(format="password")] | None = None


class CreateKey(Body):
    """``POST /auth/keys``."""

    __required__: ClassVar[tuple[str, ...]] = ("name",)
    name: Annotated[str, rules(minLength=1, maxLength=MAX_KEY_NAME)] | None = None


class HistoryContact(Body):
    __required__: ClassVar[tuple[str, ...]] = ("phone",)
    phone: Phone | None = None
    name: str | None = None


class SandboxHistory(Body):
    """``POST /sandbox/devices/{token}/history``: one history sync of these contacts."""

    __required__: ClassVar[tuple[str, ...]] = ("contacts",)
    contacts: list[HistoryContact] | None = None

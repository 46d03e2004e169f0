"""Every HTTP operation of the API, as data: path, operationId, models, error codes, parameters.

:mod:`gateway.api.openapi` turns this table and the models into the OpenAPI document;
``tests/test_openapi.py`` holds the table against the app's real route table, so a
route without an entry (or an entry without a route) fails the suite. The browser
pages, ``/docs`` and the ``/ws`` upgrade are not API operations and are left out.

``errors`` lists the codes an operation can answer besides the ones every operation
of its kind can (see :func:`Op.codes`); operationIds are part of the API (generated
clients name their functions after them) and must not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.api.models import campaigns as cm
from gateway.api.models import messages as ms
from gateway.api.models import requests as rq
from gateway.api.models import responses as rs
from gateway.api.models.base import Body

Schema = dict[str, Any]

PHONE: Schema = {"type": "string", "description": "phone number; normalized to digits", "examples": ["60123456789"]}
TOKEN = ("MISSING_TOKEN", "INVALID_PHONE", "DEVICE_NOT_FOUND", "DEVICE_MOVING")  # a {token} in the path
SANDBOX = ("FORBIDDEN", *TOKEN, "NOT_FOUND")
# What the server itself may answer on any route, around the app (gateway/server.py, the gate at shutdown).
STORE_ONLY = ("/contacts/",)  # device routes that read only the shared store: any node answers them
CONNECTION = ("REQUEST_TIMEOUT", "HEADERS_TOO_LARGE", "TOO_MANY_CONNECTIONS", "SHUTTING_DOWN")


@dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    where: str = "query"
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Download:
    """A 200 that is a file, not the JSON envelope: its media type and schema."""

    media_type: str
    schema: Schema
    description: str


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    data: type[Any] | None = None  # the envelope's ``data``; None: ``data`` is null
    body: type[Body] | None = None
    errors: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    public: bool = False  # no key needed
    never_limited: bool = False  # /health*: not rate limited either
    download: Download | None = None
    upload: dict[str, Schema] | None = None  # a request body that is not JSON: its media types and schemas
    optional_auth: bool = False  # open or keyed, by configuration (signup)
    headers: dict[str, Schema] = field(default_factory=dict)  # success response headers

    @property
    def names_device(self) -> str | None:
        """Where the device this operation acts on is named: ``"path"`` (``{token}``), ``"body"`` (the
        JSON body's ``token``), or None. In a cluster such a call is forwarded to the device's node
        (gateway.api.forwarding) — but the contacts routes, which read only the shared store."""
        if self.path.startswith(STORE_ONLY):
            return None
        if "{token}" in self.path:
            return "path"
        if self.body is not None and "token" in self.body.__struct_fields__:
            return "body"
        return None

    def codes(self) -> list[str]:
        """Every contract code this operation can answer, in the contract's order of checks."""
        base: list[str] = []
        if not self.public:
            base.append("UNAUTHORIZED")
        if not self.never_limited:
            base.append("RATE_LIMITED")
        unsafe = self.method not in ("get", "head", "options")
        if unsafe and not self.public:
            base.append("FORBIDDEN")  # the session cookie from a foreign origin (gateway.api.csrf)
        if self.body is not None:
            base += ["INVALID_REQUEST", "PAYLOAD_TOO_LARGE"]
        elif self.upload is not None:
            base += ["INVALID_REQUEST"]
        if unsafe and self.upload is None:
            base.append("UNSUPPORTED_MEDIA_TYPE")  # a Content-Type that is not JSON, body or not (uploads: any)
        cluster = ["DEVICE_MOVING"] if self.names_device else []  # no live owner (CONTRACT §14)
        return list(dict.fromkeys([*base, *self.errors, *cluster, "INTERNAL_ERROR", *CONNECTION]))


def _token_param() -> Param:
    return Param("token", PHONE, "path", "the device token: its phone number's digits", required=True)


def _id_param(what: str) -> Param:
    return Param("id", {"type": "integer", "minimum": 1}, "path", what, required=True)


TOKEN_PARAM = _token_param()
SESSION_COOKIE = {
    "Set-Cookie": {"type": "string", "description": "`gw_session`: HttpOnly, SameSite=Lax, Secure behind https, 7 days"}
}
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
    "header",
    "a repeat within 24 h returns the first successful response's data and sends nothing",
)
BINARY: Schema = {"type": "string", "format": "binary"}

MEDIA_ID = Param("id", {"type": "string", "maxLength": 64}, "path", "a media id (`med_…`)", required=True)
DEVICES = "/devices/{token}"
MESSAGE_ID = Param("id", {"type": "string", "examples": ["3EB0C767D26A1D8B9F4A"]}, "path", "a message id", True)
CHAT_JID = Param("jid", {"type": "string"}, "path", "the chat: a JID or phone number", True)
GROUP_JID = Param("jid", {"type": "string", "examples": ["120363000000000001@g.us"]}, "path", "a group JID", True)
SANDBOX_DEVICE = "/sandbox/devices/{token}"
CAMPAIGN_ID = Param("id", {"type": "string", "maxLength": 64, "examples": ["cmp_3f2a9c0d1e4b5a6978a1b2c3"]}, "path",
                    "a campaign id", True)  # fmt: skip

OPERATIONS: tuple[Op, ...] = (
    # --- health ---------------------------------------------------------------------------------
    Op("get", "/health", "getHealth", "health", "Is the process up", public=True, never_limited=True),
    Op(
        "get",
        "/health/live",
        "getLiveness",
        "health",
        "Liveness",
        rs.Probe,
        public=True,
        never_limited=True,
    ),
    Op(
        "get",
        "/health/ready",
        "getReadiness",
        "health",
        "Readiness: the store is writable and the devices are started",
        rs.Probe,
        errors=("NOT_READY",),
        public=True,
        never_limited=True,
    ),
    Op(
        "get",
        "/health/detailed",
        "getHealthDetail",
        "health",
        "Process and device overview",
        rs.HealthDetail,
        never_limited=True,
    ),
    # --- devices ----------------------------------------------------------------------------------
    Op(
        "post",
        "/devices",
        "pairDevice",
        "devices",
        "Start pairing (QR or pairing code over the WebSocket) or reconnect a paired device",
        rs.DeviceOpened,
        rq.DeviceCreate,
        ("MISSING_TOKEN", "INVALID_METHOD", "INVALID_PHONE", "DEVICE_TAKEN", "QUOTA_EXCEEDED", "CONNECTION_FAILED"),
    ),
    Op("get", "/devices", "listDevices", "devices", "List devices", rs.DeviceList),
    Op("get", DEVICES, "getDevice", "devices", "Device state", rs.DeviceState, errors=TOKEN, params=(TOKEN_PARAM,)),
    Op(
        "patch",
        DEVICES,
        "updateDevice",
        "devices",
        "Update name / webhook target",
        rs.DeviceState,
        rq.DeviceUpdate,
        TOKEN,
        (TOKEN_PARAM,),
    ),
    Op(
        "delete",
        DEVICES,
        "deleteDevice",
        "devices",
        "Log out from WhatsApp and delete the device (contacts stay unless purge=true)",
        rs.DeviceDeleted,
        errors=("INVALID_REQUEST", *TOKEN),
        params=(
            TOKEN_PARAM,
            Param("purge", {"type": "string", "enum": ["true", "false"]}, description="also delete its contacts"),
        ),
    ),
    Op(
        "get",
        f"{DEVICES}/qr",
        "getDeviceQr",
        "devices",
        "The current QR code as its raw string (the images: getDeviceQrPng, getDeviceQrSvg)",
        rs.QrCode,
        errors=TOKEN,
        params=(TOKEN_PARAM,),
    ),
    Op(
        "get",
        f"{DEVICES}/qr.png",
        "getDeviceQrPng",
        "devices",
        "The current QR code as a PNG image",
        errors=(*TOKEN, "NOT_FOUND"),
        params=(TOKEN_PARAM,),
        download=Download("image/png", BINARY, "the QR code, 8 px modules"),
    ),
    Op(
        "get",
        f"{DEVICES}/qr.svg",
        "getDeviceQrSvg",
        "devices",
        "The current QR code as an SVG image",
        errors=(*TOKEN, "NOT_FOUND"),
        params=(TOKEN_PARAM,),
        download=Download("image/svg+xml", BINARY, "the QR code, a standalone SVG document"),
    ),
    Op(
        "post",
        f"{DEVICES}/disconnect",
        "disconnectDevice",
        "devices",
        "Disconnect, keep the session",
        rs.DeviceState,
        errors=TOKEN,
        params=(TOKEN_PARAM,),
    ),
    Op(
        "post",
        f"{DEVICES}/stats/reset",
        "resetDeviceStats",
        "devices",
        "Zero the message counters",
        rs.DeviceState,
        errors=TOKEN,
        params=(TOKEN_PARAM,),
    ),
    Op(
        "get",
        f"{DEVICES}/groups",
        "listDeviceGroups",
        "devices",
        "Groups the device is in",
        rs.GroupList,
        errors=(*TOKEN, "DEVICE_NOT_CONNECTED", "CONNECTION_FAILED"),
        params=(TOKEN_PARAM,),
    ),
    # --- media ------------------------------------------------------------------------------------
    Op(
        "post",
        "/media",
        "uploadMedia",
        "media",
        "Upload media (multipart `file`, or a raw body with its Content-Type); reusable until expiresAt",
        rs.MediaStored,
        errors=("INVALID_MEDIA", "MEDIA_TOO_LARGE"),
        params=(Param("filename", {"type": "string"}, description="the file's name, for a raw body"),),
        upload={
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": BINARY, "filename": {"type": "string"}},
                    "required": ["file"],
                }
            },
            "application/octet-stream": {"schema": BINARY},
        },
    ),
    Op(
        "get",
        "/media/{id}",
        "getMedia",
        "media",
        "The media's bytes with their Content-Type; with `exp` and `sig` (a signed link) no key is needed",
        errors=("FORBIDDEN", "NOT_FOUND"),
        params=(
            MEDIA_ID,
            Param("exp", {"type": "string"}, description="a signed link's expiry (unix seconds)"),
            Param("sig", {"type": "string"}, description="a signed link's signature"),
        ),
        download=Download("application/octet-stream", BINARY, "the bytes, with their stored Content-Type"),
        optional_auth=True,
    ),
    Op(
        "delete",
        "/media/{id}",
        "deleteMedia",
        "media",
        "Delete an upload",
        rs.MediaDeleted,
        errors=("NOT_FOUND",),
        params=(MEDIA_ID,),
    ),
    Op(
        "post",
        f"{DEVICES}/messages/{{id}}/media",
        "retryMediaDownload",
        "media",
        "Download again an incoming message's media whose download failed; answers its new media object",
        ms.MediaInfo,
        errors=(*TOKEN, "NOT_FOUND", "MEDIA_FETCH_FAILED"),
        params=(
            TOKEN_PARAM,
            Param("id", {"type": "string", "maxLength": 128}, "path", "the message id", required=True),
        ),
    ),
    # --- messages ---------------------------------------------------------------------------------
    Op(
        "post",
        "/messages",
        "sendMessage",
        "messages",
        "Send a message: text, location, contacts, a reaction or a poll, optionally replying to a stored "
        "message and mentioning people (sends of one device leave in request order)",
        rs.MessageSent,
        rq.SendMessage,
        (
            "MISSING_TOKEN",
            "INVALID_PHONE",
            "INVALID_MESSAGE",
            "INVALID_MEDIA",
            "MEDIA_TOO_LARGE",
            "MEDIA_FETCH_FAILED",
            "DEVICE_NOT_FOUND",
            "NOT_FOUND",
            "DEVICE_NOT_CONNECTED",
            "SEND_FAILED",
            "CONNECTION_FAILED",
        ),
        (IDEMPOTENCY_KEY,),
        headers={
            "Idempotent-Replayed": {
                "type": "string",
                "enum": ["true", "false"],
                "description": "with an Idempotency-Key: whether this answer is a replay",
            }
        },
    ),
    Op(
        "post",
        "/validate/phone",
        "validatePhone",
        "messages",
        "Is this number on WhatsApp (answers cached for PHONE_CACHE_TTL_S)",
        rs.PhoneValidation,
        rq.ValidatePhone,
        (
            "MISSING_TOKEN",
            "INVALID_PHONE",
            "DEVICE_NOT_FOUND",
            "DEVICE_NOT_CONNECTED",
            "VALIDATION_FAILED",
            "CONNECTION_FAILED",
        ),
    ),
    Op(
        "delete",
        "/cache",
        "clearPhoneCache",
        "messages",
        "Clear the phone-validation cache (admin key)",
        rs.CacheCleared,
        errors=("FORBIDDEN",),
    ),
    # --- contacts ---------------------------------------------------------------------------------
    Op(
        "get",
        "/contacts/{token}",
        "listContacts",
        "contacts",
        "Contacts seen by a device, a JSON page ordered by firstSeen then phone",
        rs.ContactPage,
        errors=("INVALID_REQUEST", *TOKEN),
        params=(
            TOKEN_PARAM,
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, description="default 100"),
            Param("offset", {"type": "integer", "minimum": 0}, description="default 0"),
        ),
    ),
    Op(
        "get",
        "/contacts/{token}/export",
        "exportContactsCsv",
        "contacts",
        "Contacts seen by a device as a streamed CSV file (`?limit=all`: every row)",
        errors=("INVALID_REQUEST", *TOKEN),
        params=(
            TOKEN_PARAM,
            Param(
                "limit",
                {"type": "string", "pattern": "^(all|[0-9]{1,4})$"},
                description="a number from 1 to 1000 (default 100), or `all`",
            ),
            Param("offset", {"type": "integer", "minimum": 0}, description="default 0"),
        ),
        download=Download(
            "text/csv",
            {"type": "string", "description": "header `phone,name,source,first_seen,last_seen`"},
            "CSV (UTF-8), `Content-Disposition: attachment`",
        ),
    ),
    # --- campaigns --------------------------------------------------------------------------------
    Op(
        "post",
        "/campaigns",
        "createCampaign",
        "campaigns",
        "Create a paced bulk send (inline recipients, a CSV upload, or the device's contacts); it starts now "
        "or at startAt",
        cm.Campaign,
        cm.CampaignCreate,
        ("MISSING_TOKEN", "INVALID_PHONE", "INVALID_MESSAGE", "INVALID_MEDIA", "DEVICE_NOT_FOUND"),
    ),
    Op(
        "get",
        "/campaigns",
        "listCampaigns",
        "campaigns",
        "The caller's campaigns, newest first",
        cm.CampaignList,
        errors=("INVALID_REQUEST",),
        params=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, description="default 100"),),
    ),
    Op(
        "get",
        "/campaigns/{id}",
        "getCampaign",
        "campaigns",
        "One campaign: status, counts, etaAt",
        cm.Campaign,
        errors=("NOT_FOUND",),
        params=(CAMPAIGN_ID,),
    ),
    *(
        Op(
            "post",
            f"/campaigns/{{id}}/{action}",
            f"{action}Campaign",
            "campaigns",
            summary,
            cm.Campaign,
            errors=("INVALID_REQUEST", "NOT_FOUND"),
            params=(CAMPAIGN_ID,),
        )
        for action, summary in (
            ("pause", "Pause sending (a send in flight finishes)"),
            ("resume", "Resume a paused campaign where it stopped"),
            ("cancel", "Cancel: nothing more is sent"),
        )
    ),
    Op(
        "get",
        "/campaigns/{id}/recipients",
        "listCampaignRecipients",
        "campaigns",
        "Per-recipient status, in the order given: a JSON page, or (`format=csv`) every row streamed",
        cm.CampaignRecipientPage,
        errors=("INVALID_REQUEST", "NOT_FOUND"),
        params=(
            CAMPAIGN_ID,
            Param("status", {"type": "string", "enum": ["pending", "sent", "delivered", "read", "failed", "skipped"]}),
            Param("format", {"type": "string", "enum": ["json", "csv"]}, description="default json"),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, description="JSON: default 100"),
            Param("after", {"type": "integer", "minimum": 0}, description="JSON: `nextAfter` of the previous page"),
        ),
    ),
    # --- webhooks ---------------------------------------------------------------------------------
    Op(
        "get",
        "/webhooks/deliveries",
        "listDeliveries",
        "webhooks",
        "The webhook outbox, newest first (an account: deliveries to its own targets; the admin: all, "
        "URL credentials and query values redacted)",
        rs.DeliveryList,
        errors=("INVALID_REQUEST", "INVALID_PHONE"),
        params=(
            Param("status", {"type": "string", "enum": ["pending", "delivered", "failed"]}),
            Param("token", PHONE),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, description="default 100"),
        ),
    ),
    Op(
        "get",
        "/webhooks/deliveries/{id}",
        "getDelivery",
        "webhooks",
        "One delivery (an account's own targets only; the admin sees any, URL redacted)",
        rs.Delivery,
        errors=("INVALID_REQUEST", "NOT_FOUND"),
        params=(_id_param("delivery id"),),
    ),
    Op(
        "post",
        "/webhooks/deliveries/{id}/retry",
        "retryDelivery",
        "webhooks",
        "Put a failed delivery back in the queue with attempts 0",
        rs.Delivery,
        errors=("INVALID_REQUEST", "NOT_FOUND"),
        params=(_id_param("delivery id"),),
    ),
    # --- the message store, chats, groups (§12) ---------------------------------------------------------
    Op(
        "get",
        f"{DEVICES}/messages",
        "listMessages",
        "messages",
        "Stored messages, newest first, with filters and a cursor",
        ms.MessagePage,
        errors=(*TOKEN, "INVALID_REQUEST"),
        params=(
            TOKEN_PARAM,
            Param("chat", {"type": "string"}, description="a chat: phone number or JID"),
            Param("direction", {"type": "string", "enum": ["in", "out"]}),
            Param("type", {"type": "string", "enum": [*ms.MESSAGE_TYPES, "reaction"]}),
            Param("since", {"type": "string", "format": "date-time"}, description="RFC 3339, inclusive"),
            Param("until", {"type": "string", "format": "date-time"}, description="RFC 3339, inclusive"),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
            Param("cursor", {"type": "string"}, description="nextCursor of the previous page"),
        ),
    ),
    Op(
        "get",
        f"{DEVICES}/messages/{{id}}",
        "getMessage",
        "messages",
        "One stored message with its status history",
        ms.StoredMessage,
        errors=(*TOKEN, "INVALID_REQUEST", "NOT_FOUND"),
        params=(TOKEN_PARAM, MESSAGE_ID),
    ),
    Op(
        "patch",
        f"{DEVICES}/messages/{{id}}",
        "editMessage",
        "messages",
        "Edit a text this device sent (within 15 minutes)",
        ms.StoredMessage,
        ms.EditMessage,
        (*TOKEN, "INVALID_MESSAGE", "NOT_FOUND", "DEVICE_NOT_CONNECTED", "SEND_FAILED"),
        (TOKEN_PARAM, MESSAGE_ID),
    ),
    Op(
        "delete",
        f"{DEVICES}/messages/{{id}}",
        "revokeMessage",
        "messages",
        "Delete a message this device sent, for everyone",
        ms.StoredMessage,
        errors=(*TOKEN, "INVALID_REQUEST", "NOT_FOUND", "DEVICE_NOT_CONNECTED", "SEND_FAILED"),
        params=(TOKEN_PARAM, MESSAGE_ID),
    ),
    Op(
        "post",
        f"{DEVICES}/messages/{{id}}/read",
        "markMessageRead",
        "messages",
        "Mark an incoming message, and its chat up to it, read",
        ms.MessagesRead,
        errors=(*TOKEN, "INVALID_REQUEST", "NOT_FOUND", "DEVICE_NOT_CONNECTED", "SEND_FAILED"),
        params=(TOKEN_PARAM, MESSAGE_ID),
    ),
    Op(
        "get",
        f"{DEVICES}/chats",
        "listChats",
        "messages",
        "Chats, most recent first, with their last message and unread count",
        ms.ChatPage,
        errors=(*TOKEN, "INVALID_REQUEST"),
        params=(
            TOKEN_PARAM,
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
            Param("cursor", {"type": "string"}, description="nextCursor of the previous page"),
        ),
    ),
    Op(
        "post",
        f"{DEVICES}/chats/{{jid}}/presence",
        "sendPresence",
        "messages",
        "Show typing (composing), recording, or stop (paused) in a chat",
        ms.PresenceShown,
        ms.PresenceIn,
        (*TOKEN, "DEVICE_NOT_CONNECTED", "SEND_FAILED"),
        (TOKEN_PARAM, CHAT_JID),
    ),
    Op(
        "post",
        f"{DEVICES}/groups",
        "createGroup",
        "groups",
        "Create a group",
        ms.GroupDetail,
        ms.GroupCreate,
        (*TOKEN, "DEVICE_NOT_CONNECTED", "SEND_FAILED"),
        (TOKEN_PARAM,),
    ),
    Op(
        "get",
        f"{DEVICES}/groups/{{jid}}",
        "getGroup",
        "groups",
        "A group with its participants",
        ms.GroupDetail,
        errors=(*TOKEN, "INVALID_REQUEST", "NOT_FOUND", "DEVICE_NOT_CONNECTED"),
        params=(TOKEN_PARAM, GROUP_JID),
    ),
    Op(
        "post",
        f"{DEVICES}/groups/{{jid}}/participants",
        "updateGroupParticipants",
        "groups",
        "Add, remove, promote or demote participants: one result per phone",
        ms.ParticipantsChanged,
        ms.ParticipantsIn,
        (*TOKEN, "NOT_FOUND", "DEVICE_NOT_CONNECTED", "SEND_FAILED"),
        (TOKEN_PARAM, GROUP_JID),
    ),
    Op(
        "get",
        f"{DEVICES}/groups/{{jid}}/invite",
        "getGroupInvite",
        "groups",
        "The group's invite link (?revoke=true resets it first)",
        ms.InviteLink,
        errors=(*TOKEN, "INVALID_REQUEST", "NOT_FOUND", "DEVICE_NOT_CONNECTED", "SEND_FAILED"),
        params=(TOKEN_PARAM, GROUP_JID, Param("revoke", {"type": "boolean", "default": False})),
    ),
    Op(
        "delete",
        f"{DEVICES}/groups/{{jid}}",
        "leaveGroup",
        "groups",
        "Leave a group",
        ms.GroupLeft,
        errors=(*TOKEN, "INVALID_REQUEST", "NOT_FOUND", "DEVICE_NOT_CONNECTED", "SEND_FAILED"),
        params=(TOKEN_PARAM, GROUP_JID),
    ),
    # --- sandbox ----------------------------------------------------------------------------------
    Op(
        "post",
        f"{SANDBOX_DEVICE}/scan",
        "sandboxScan",
        "sandbox",
        "The phone scans the QR / enters the code → connected",
        rs.DeviceState,
        errors=(*SANDBOX, "INVALID_REQUEST"),
        params=(TOKEN_PARAM,),
    ),
    Op(
        "post",
        f"{SANDBOX_DEVICE}/incoming",
        "sandboxIncoming",
        "sandbox",
        "An incoming message of any kind, a reaction, or (fromMe) one typed on the phone; a new sender also "
        "gives contacts.new",
        ms.IncomingSimulated,
        ms.SandboxIncoming,
        (*SANDBOX, "INVALID_PHONE", "INVALID_MESSAGE", "INVALID_MEDIA", "DEVICE_NOT_CONNECTED"),
        (TOKEN_PARAM,),
    ),
    Op(
        "post",
        f"{SANDBOX_DEVICE}/edit",
        "sandboxEdit",
        "sandbox",
        "The author of an incoming message edits it → message.edited",
        ms.ActionSimulated,
        ms.SandboxEdit,
        (*SANDBOX, "INVALID_MESSAGE", "DEVICE_NOT_CONNECTED"),
        (TOKEN_PARAM,),
    ),
    Op(
        "post",
        f"{SANDBOX_DEVICE}/revoke",
        "sandboxRevoke",
        "sandbox",
        "The author of an incoming message deletes it for everyone → message.revoked",
        ms.ActionSimulated,
        ms.SandboxRevoke,
        (*SANDBOX, "DEVICE_NOT_CONNECTED"),
        (TOKEN_PARAM,),
    ),
    Op(
        "post",
        f"{SANDBOX_DEVICE}/history",
        "sandboxHistory",
        "sandbox",
        "History sync → one contacts.sync",
        rs.HistorySimulated,
        rq.SandboxHistory,
        (*SANDBOX, "DEVICE_NOT_CONNECTED"),
        (TOKEN_PARAM,),
    ),
    Op(
        "post",
        f"{SANDBOX_DEVICE}/drop",
        "sandboxDrop",
        "sandbox",
        "Network loss → disconnected, then reconnects on its own",
        rs.DeviceState,
        errors=(*SANDBOX, "DEVICE_NOT_CONNECTED"),
        params=(TOKEN_PARAM,),
    ),
    Op(
        "post",
        f"{SANDBOX_DEVICE}/replace",
        "sandboxReplace",
        "sandbox",
        "Another client opens the session → disconnected, session kept, not reconnected",
        rs.DeviceState,
        errors=(*SANDBOX, "DEVICE_NOT_CONNECTED"),
        params=(TOKEN_PARAM,),
    ),
    Op(
        "post",
        f"{SANDBOX_DEVICE}/unlink",
        "sandboxUnlink",
        "sandbox",
        "Unlinked from the phone → logged_out, session deleted",
        rs.DeviceState,
        errors=(*SANDBOX, "DEVICE_NOT_CONNECTED"),
        params=(TOKEN_PARAM,),
    ),
    Op(
        "get",
        f"{SANDBOX_DEVICE}/sent",
        "sandboxListSent",
        "sandbox",
        "What the simulated WhatsApp received (last 1,000)",
        ms.SandboxSentList,
        errors=SANDBOX,
        params=(TOKEN_PARAM,),
    ),
    # --- accounts ---------------------------------------------------------------------------------
    Op(
        "post",
        "/auth/signup",
        "signup",
        "accounts",
        "Create an account (open when ALLOW_SIGNUP=true, else admin key only)",
        rs.AuthSession,
        rq.Signup,
        ("FORBIDDEN",),
        headers=SESSION_COOKIE,
        optional_auth=True,
    ),
    Op(
        "post",
        "/auth/login",
        "login",
        "accounts",
        "Log in with email or username; one message for unknown user and wrong password",
        rs.AuthSession,
        rq.Login,
        ("UNAUTHORIZED",),
        public=True,
        headers=SESSION_COOKIE,
    ),
    Op("post", "/auth/logout", "logout", "accounts", "Revoke the session token and clear the cookie", rs.SignedOut),
    Op("get", "/auth/me", "getAccount", "accounts", "The calling account", rs.Account, errors=("FORBIDDEN",)),
    Op(
        "patch",
        "/auth/me",
        "updateAccount",
        "accounts",
        "Set the account's own webhook target (no private/loopback URLs unless WEBHOOK_ALLOW_PRIVATE=true)",
        rs.Account,
        rq.WebhookTarget,
        ("FORBIDDEN",),
    ),
    Op(
        "post",
        "/auth/me/webhook-secret",
        "rotateWebhookSecret",
        "accounts",
        "Rotate the account's webhook signing secret (the new one is shown once; the old one keeps "
        "signing alongside for 24 h)",
        rs.WebhookSecret,
        errors=("FORBIDDEN",),
    ),
    Op(
        "post",
        "/auth/keys",
        "createApiKey",
        "accounts",
        "Create an API key (shown once, stored hashed)",
        rs.NewApiKey,
        rq.CreateKey,
        ("FORBIDDEN",),
    ),
    Op("get", "/auth/keys", "listApiKeys", "accounts", "The account's API keys", rs.ApiKeyList, errors=("FORBIDDEN",)),
    Op(
        "delete",
        "/auth/keys/{id}",
        "revokeApiKey",
        "accounts",
        "Revoke an API key",
        rs.KeyRevoked,
        errors=("FORBIDDEN", "INVALID_REQUEST", "NOT_FOUND"),
        params=(_id_param("key id"),),
    ),
    Op(
        "get",
        "/auth/accounts",
        "listAccounts",
        "accounts",
        "All accounts (admin key)",
        rs.AccountList,
        errors=("FORBIDDEN",),
    ),
    Op(
        "delete",
        "/auth/accounts/{id}",
        "deleteAccount",
        "accounts",
        "Delete an account with its keys and sessions (admin key)",
        rs.AccountDeleted,
        errors=("FORBIDDEN", "INVALID_REQUEST", "NOT_FOUND"),
        params=(_id_param("account id"),),
    ),
    # --- operations -------------------------------------------------------------------------------
    Op(
        "get",
        "/metrics",
        "getMetrics",
        "operations",
        "Prometheus metrics (text format, admin key)",
        errors=("FORBIDDEN",),
        download=Download("text/plain", {"type": "string"}, "Prometheus text exposition"),
    ),
    Op(
        "get",
        "/openapi.json",
        "getOpenApiDocument",
        "operations",
        "This document",
        public=True,
        download=Download("application/json", {"type": "object"}, "OpenAPI 3.1"),
    ),
)

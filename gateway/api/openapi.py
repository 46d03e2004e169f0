"""The OpenAPI 3.1 document of the whole HTTP API, kept in this one place.

``tests/test_openapi.py`` holds it against the app's real route table (a route
without an entry, or an entry without a route, fails the suite) and
``tests/test_fuzz.py`` fuzzes every operation with schemathesis, checking each
response against the schemas here. Error responses are grouped by HTTP status,
each listing exactly the contract codes that operation can answer with.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from gateway import __version__
from gateway.api.errors import STATUS
from gateway.settings import WEBHOOK_EVENT_NAMES

Schema = dict[str, Any]

WHEN: dict[str, str] = {
    "UNAUTHORIZED": "missing or invalid key",
    "FORBIDDEN": "valid key, but the route needs the admin key or the resource belongs to another account",
    "RATE_LIMITED": "over the limit; `Retry-After` header in seconds",
    "INVALID_REQUEST": "body not JSON, not an object, wrong field types, bad query parameters",
    "PAYLOAD_TOO_LARGE": "body over 1 MiB",
    "MISSING_TOKEN": "`token` absent or empty",
    "INVALID_METHOD": "`method` not `qr`/`code`",
    "INVALID_PHONE": "a phone number (`token`, `to`, `phone`, `from`) fails the phone rules",
    "INVALID_MESSAGE": "text empty/whitespace or over 65,536 characters",
    "NOT_FOUND": "no such route / delivery / account / key / QR",
    "METHOD_NOT_ALLOWED": "known route, wrong method",
    "DEVICE_TAKEN": "the token is a device of another account",
    "DEVICE_NOT_FOUND": "no device for the token (also another account's device)",
    "DEVICE_NOT_CONNECTED": "the device exists but is not connected",
    "CONNECTION_FAILED": "WhatsApp could not be reached",
    "SEND_FAILED": "the send failed",
    "VALIDATION_FAILED": "the on-WhatsApp check failed",
    "INTERNAL_ERROR": "anything unexpected (never a stack trace)",
    "NOT_READY": "not ready yet",
}

# --- schema helpers ---------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: tuple[str, ...] = (), **props: Schema) -> Schema:
    out: Schema = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    return out


def arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
PHONE: Schema = {"type": "string", "description": "phone number; normalized to digits", "examples": ["60123456789"]}

# --- components -------------------------------------------------------------

EVENT_NAMES = sorted(WEBHOOK_EVENT_NAMES)
DEVICE_STATUS: Schema = {"type": "string", "enum": ["pairing", "connected", "disconnected", "logged_out"]}

SCHEMAS: dict[str, Schema] = {
    "Meta": obj(("timestamp", "requestId"), timestamp=TIME, requestId=STR),
    "Error": {
        **obj(
            ("success", "error", "meta"),
            success={"const": False},
            error=obj(("code", "message"), code={"type": "string", "enum": list(STATUS)}, message=STR),
            meta=ref("Meta"),
        ),
        "description": "The error envelope; switch on `error.code`.",
    },
    "WebhookEvent": {"type": "string", "enum": EVENT_NAMES},
    "DeviceStatus": DEVICE_STATUS,
    "DeviceState": obj(
        ("token", "status", "reconnecting", "ready", "authenticated", "hasQR", "info", "uptime", "stats", "lastUpdate"),
        token=STR,
        status=ref("DeviceStatus"),
        reconnecting=BOOL,
        ready=BOOL,
        authenticated=BOOL,
        hasQR=BOOL,
        info=obj(pushname=nullable(STR), platform=nullable(STR), phoneMasked=nullable(STR)),
        uptime={**NUM, "description": "seconds connected"},
        stats=obj(("messagesSent", "messagesReceived"), messagesSent=INT, messagesReceived=INT),
        lastUpdate=TIME,
        name=nullable(STR),
        webhookUrl=nullable(STR),
        webhookEvents=nullable(arr(ref("WebhookEvent"))),
    ),
    "DeviceSummary": obj(
        ("token", "status"),
        token=STR,
        name=nullable(STR),
        status=ref("DeviceStatus"),
        method={"type": "string", "enum": ["qr", "code"]},
        pushname=nullable(STR),
        createdAt=TIME,
        connectedAt=nullable(TIME),
    ),
    "Group": obj(
        ("jid",),
        jid=STR,
        name=nullable(STR),
        topic=nullable(STR),
        owner=nullable(STR),
        participantCount=INT,
        isAdmin=BOOL,
        isSuperAdmin=BOOL,
    ),
    "Contact": obj(
        ("phone", "source", "firstSeen", "lastSeen"),
        phone=STR,
        name=nullable(STR),
        source={"type": "string", "enum": ["message", "history"]},
        firstSeen=TIME,
        lastSeen=TIME,
    ),
    "Delivery": obj(
        ("id", "event", "url", "status", "attempts"),
        id=INT,
        event=STR,
        token=nullable(STR),
        url=STR,
        status={"type": "string", "enum": ["pending", "delivered", "failed"]},
        attempts=INT,
        lastError=nullable(STR),
        nextAttemptAt=nullable(TIME),
        createdAt=TIME,
        deliveredAt=nullable(TIME),
    ),
    "AuthSession": obj(
        ("token", "userId", "username", "apiKey"),
        token={**STR, "description": "session token (also usable as `Authorization: Bearer`)"},
        userId=INT,
        username=STR,
        apiKey=nullable(STR),
    ),
    "Account": obj(
        ("userId", "username", "email"),
        userId=INT,
        username=STR,
        email=STR,
        webhookUrl=nullable(STR),
        webhookEvents=nullable(arr(ref("WebhookEvent"))),
        createdAt=TIME,
        deviceCount={**INT, "description": "only in `GET /auth/accounts`"},
    ),
    "ApiKey": obj(
        ("id", "name", "prefix", "createdAt"),
        id=INT,
        name=STR,
        prefix={**STR, "description": "the key's first characters, to recognise it"},
        createdAt=TIME,
        sessionBound={**BOOL, "description": "issued with a login/signup session and revoked with it"},
        key={**STR, "description": "the key itself: only in the answer of `POST /auth/keys`, shown once"},
    ),
    "WebhookTarget": obj(
        name=nullable({**STR, "maxLength": 100}),
        webhookUrl=nullable({**STR, "format": "uri", "examples": ["https://crm.example.com/hooks/wa"]}),
        webhookEvents=nullable(arr(ref("WebhookEvent"))),
    ),
}


def envelope(data: Schema) -> Schema:
    return obj(
        ("success", "data", "message", "meta"),
        success={"const": True},
        data=data,
        message=STR,
        meta=ref("Meta"),
    )


def errors(*codes: str) -> dict[str, Any]:
    """Error responses grouped by status; each lists exactly the codes it can carry."""
    by_status: dict[int, list[str]] = {}
    for code in (*codes, "INTERNAL_ERROR"):
        by_status.setdefault(STATUS[code], []).append(code)
    out: dict[str, Any] = {}
    for status, group in sorted(by_status.items()):
        schema = {
            "allOf": [ref("Error"), obj(error=obj(code={"type": "string", "enum": group}))],
        }
        response: dict[str, Any] = {
            "description": "; ".join(f"`{c}`: {WHEN[c]}" for c in group),
            "content": {"application/json": {"schema": schema}},
        }
        if status == 429:
            response["headers"] = {"Retry-After": {"schema": INT, "description": "seconds to wait"}}
        out[str(status)] = response
    return out


def ok(data: Schema, description: str = "success") -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": envelope(data)}}}}


def body(schema: Schema, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def query(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


TOKEN_PARAM: dict[str, Any] = {
    "name": "token",
    "in": "path",
    "required": True,
    "schema": PHONE,
    "description": "the device token: its phone number's digits",
}


def id_param(what: str) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
        "description": what,
    }


KEYED = ("UNAUTHORIZED", "RATE_LIMITED")  # every route that needs a key
BODY = ("INVALID_REQUEST", "PAYLOAD_TOO_LARGE")  # every route that reads a JSON body
PATH_TOKEN = ("MISSING_TOKEN", "INVALID_PHONE", "DEVICE_NOT_FOUND")
SANDBOX = (*KEYED, "FORBIDDEN", *PATH_TOKEN, "NOT_FOUND")


def op(tag: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"tags": [tag], "summary": summary, "responses": responses}
    out.update(extra)
    return out


PUBLIC: dict[str, Any] = {"security": []}

# --- paths ------------------------------------------------------------------


def _health() -> dict[str, Any]:
    detailed = obj(
        ("uptime", "tasks", "threads", "memoryRss", "deviceCount", "devices"),
        uptime=NUM,
        tasks=INT,
        threads=INT,
        memoryRss={**INT, "description": "bytes"},
        driver=STR,
        deviceCount=INT,
        devices=arr(obj(("token", "status"), token=STR, status=ref("DeviceStatus"))),
    )
    status = obj(("status",), status=STR)
    return {
        "/health": {"get": op("health", "Is the process up", {**ok({"type": "null"}), **errors()}, **PUBLIC)},
        "/health/live": {"get": op("health", "Liveness", {**ok(status), **errors()}, **PUBLIC)},
        "/health/ready": {
            "get": op(
                "health",
                "Readiness: registry writable and devices started",
                {**ok(status), **errors("NOT_READY")},
                **PUBLIC,
            )
        },
        "/health/detailed": {"get": op("health", "Process and device overview", {**ok(detailed), **errors(*KEYED)})},
    }


def _devices() -> dict[str, Any]:
    create = obj(
        ("token",),
        token=PHONE,
        method={"type": "string", "enum": ["qr", "code"], "default": "qr"},
        name=nullable({**STR, "maxLength": 100}),
        webhookUrl=SCHEMAS["WebhookTarget"]["properties"]["webhookUrl"],
        webhookEvents=nullable(arr(ref("WebhookEvent"))),
    )
    created = obj(("token", "method", "status"), token=STR, method=STR, status=ref("DeviceStatus"))
    deleted = obj(("token", "status"), token=STR, status=ref("DeviceStatus"), purged=BOOL)
    qr = envelope(obj(("hasQR", "qr"), hasQR=BOOL, qr=nullable(STR)))
    device = [TOKEN_PARAM]
    return {
        "/devices": {
            "post": op(
                "devices",
                "Start pairing (QR or pairing code over the WebSocket) or reconnect a paired device",
                {
                    **ok(created),
                    **errors(
                        *KEYED,
                        *BODY,
                        "MISSING_TOKEN",
                        "INVALID_METHOD",
                        "INVALID_PHONE",
                        "DEVICE_TAKEN",
                        "CONNECTION_FAILED",
                    ),
                },
                requestBody=body(create),
            ),
            "get": op(
                "devices",
                "List devices",
                {**ok(obj(("devices",), devices=arr(ref("DeviceSummary")))), **errors(*KEYED)},
            ),
        },
        "/devices/{token}": {
            "parameters": device,
            "get": op("devices", "Device state", {**ok(ref("DeviceState")), **errors(*KEYED, *PATH_TOKEN)}),
            "patch": op(
                "devices",
                "Update name / webhook target",
                {**ok(ref("DeviceState")), **errors(*KEYED, *BODY, *PATH_TOKEN)},
                requestBody=body(ref("WebhookTarget")),
            ),
            "delete": op(
                "devices",
                "Log out from WhatsApp and delete the device (contacts stay unless purge=true)",
                {**ok(deleted), **errors(*KEYED, "INVALID_REQUEST", *PATH_TOKEN)},
                parameters=[query("purge", {"type": "string", "enum": ["true", "false"]}, "also delete its contacts")],
            ),
        },
        "/devices/{token}/qr": {
            "parameters": device,
            "get": op(
                "devices",
                "The current QR code: JSON, or the image itself",
                {
                    "200": {
                        "description": "JSON by default; a PNG or SVG image with `?format=png|svg`",
                        "content": {
                            "application/json": {"schema": qr},
                            "image/png": {"schema": {"type": "string", "contentEncoding": "binary"}},
                            "image/svg+xml": {"schema": STR},
                        },
                    },
                    **errors(*KEYED, "INVALID_REQUEST", *PATH_TOKEN, "NOT_FOUND"),
                },
                parameters=[query("format", {"type": "string", "enum": ["json", "png", "svg"]})],
            ),
        },
        "/devices/{token}/disconnect": {
            "parameters": device,
            "post": op(
                "devices", "Disconnect, keep the session", {**ok(ref("DeviceState")), **errors(*KEYED, *PATH_TOKEN)}
            ),
        },
        "/devices/{token}/stats/reset": {
            "parameters": device,
            "post": op(
                "devices", "Zero the message counters", {**ok(ref("DeviceState")), **errors(*KEYED, *PATH_TOKEN)}
            ),
        },
        "/devices/{token}/groups": {
            "parameters": device,
            "get": op(
                "devices",
                "Groups the device is in",
                {
                    **ok(obj(("groups", "count"), groups=arr(ref("Group")), count=INT)),
                    **errors(*KEYED, *PATH_TOKEN, "DEVICE_NOT_CONNECTED", "CONNECTION_FAILED"),
                },
            ),
        },
    }


def _messaging() -> dict[str, Any]:
    send = obj(
        ("token", "to", "text"),
        token=PHONE,
        to={
            **STR,
            "description": "phone number, or a JID (`…@s.whatsapp.net`, group `…@g.us`)",
            "examples": ["60198765432"],
        },
        text={**STR, "minLength": 1, "maxLength": 65536, "examples": ["Hello from wa-gateway"]},
    )
    idem = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {**STR, "maxLength": 255},
        "description": "a repeat within 24 h returns the first successful response's data and sends nothing",
    }
    validated = obj(
        ("phone", "isOnWhatsApp", "jid", "cached"),
        phone=STR,
        isOnWhatsApp=BOOL,
        jid=nullable(STR),
        verifiedName=nullable(STR),
        cached=BOOL,
    )
    send_errors = errors(
        *KEYED,
        *BODY,
        "MISSING_TOKEN",
        "INVALID_PHONE",
        "INVALID_MESSAGE",
        "DEVICE_NOT_FOUND",
        "DEVICE_NOT_CONNECTED",
        "SEND_FAILED",
        "CONNECTION_FAILED",
    )
    return {
        "/messages": {
            "post": op(
                "messages",
                "Send a text message (sends of one device leave in request order)",
                {**ok(obj(("messageId", "timestamp"), messageId=STR, timestamp=TIME)), **send_errors},
                requestBody=body(send),
                parameters=[idem],
            )
        },
        "/validate/phone": {
            "post": op(
                "messages",
                "Is this number on WhatsApp (answers cached for PHONE_CACHE_TTL_S)",
                {
                    **ok(validated),
                    **errors(
                        *KEYED,
                        *BODY,
                        "MISSING_TOKEN",
                        "INVALID_PHONE",
                        "DEVICE_NOT_FOUND",
                        "DEVICE_NOT_CONNECTED",
                        "VALIDATION_FAILED",
                        "CONNECTION_FAILED",
                    ),
                },
                requestBody=body(obj(("token", "phone"), token=PHONE, phone=PHONE)),
            )
        },
        "/cache": {
            "delete": op(
                "messages", "Clear the phone-validation cache", {**ok(obj(("cleared",), cleared=INT)), **errors(*KEYED)}
            )
        },
    }


def _contacts_and_webhooks() -> dict[str, Any]:
    listing = obj(
        ("contacts", "total", "limit", "offset"),
        contacts=arr(ref("Contact")),
        total=INT,
        limit={"anyOf": [INT, {"const": "all"}]},
        offset=INT,
    )
    contacts_200 = {
        "description": "JSON page, or (`?format=csv`) a streamed CSV `phone,name,source,first_seen,last_seen`",
        "content": {"application/json": {"schema": envelope(listing)}, "text/csv": {"schema": STR}},
    }
    return {
        "/contacts/{token}": {
            "parameters": [TOKEN_PARAM],
            "get": op(
                "contacts",
                "Contacts seen by a device, ordered by firstSeen then phone",
                {"200": contacts_200, **errors(*KEYED, "INVALID_REQUEST", *PATH_TOKEN)},
                parameters=[
                    query(
                        "limit",
                        {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1000}, {"const": "all"}]},
                        "default 100, max 1000; `all` (CSV) exports every row",
                    ),
                    query("offset", {"type": "integer", "minimum": 0}),
                    query("format", {"type": "string", "enum": ["json", "csv"]}),
                ],
            ),
        },
        "/webhooks/deliveries": {
            "get": op(
                "webhooks",
                "The webhook outbox, newest first",
                {
                    **ok(obj(("deliveries",), deliveries=arr(ref("Delivery")))),
                    **errors(*KEYED, "INVALID_REQUEST", "INVALID_PHONE"),
                },
                parameters=[
                    query("status", {"type": "string", "enum": ["pending", "delivered", "failed"]}),
                    query("token", PHONE),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
            )
        },
        "/webhooks/deliveries/{id}/retry": {
            "parameters": [id_param("delivery id")],
            "post": op(
                "webhooks",
                "Put a failed delivery back in the queue with attempts 0",
                {**ok(ref("Delivery")), **errors(*KEYED, "INVALID_REQUEST", "NOT_FOUND")},
            ),
        },
    }


def _sandbox() -> dict[str, Any]:
    def route(
        summary: str, *codes: str, data: Schema | None = None, request: Schema | None = None, method: str = "post"
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {"requestBody": body(request)} if request is not None else {}
        codes_all = (*SANDBOX, *codes, *(BODY if request is not None else ()))
        responses = {**ok(data or ref("DeviceState")), **errors(*dict.fromkeys(codes_all))}
        return {"parameters": [TOKEN_PARAM], method: op("sandbox", summary, responses, **extra)}

    incoming = obj(
        ("from", "text"),
        **{"from": PHONE},
        name=nullable(STR),
        text={**STR, "minLength": 1, "maxLength": 65536},
    )
    history = obj(("contacts",), contacts=arr(obj(("phone",), phone=PHONE, name=nullable(STR))))
    sent = obj(
        ("messages",),
        token=STR,
        messages=arr(obj(("id", "to", "text", "timestamp"), id=STR, to=STR, text=STR, timestamp=TIME)),
    )
    base = "/sandbox/devices/{token}"
    return {
        f"{base}/scan": route("The phone scans the QR / enters the code → connected", "INVALID_REQUEST"),
        f"{base}/incoming": route(
            "An incoming message (a new sender also gives contacts.new)",
            "INVALID_PHONE",
            "INVALID_MESSAGE",
            "DEVICE_NOT_CONNECTED",
            data=obj(("token", "id", "from"), token=STR, id=STR, **{"from": STR}),
            request=incoming,
        ),
        f"{base}/history": route(
            "History sync → one contacts.sync",
            "INVALID_PHONE",
            "DEVICE_NOT_CONNECTED",
            data=obj(("token", "count"), token=STR, count=INT),
            request=history,
        ),
        f"{base}/drop": route("Network loss → disconnected, then reconnects on its own", "DEVICE_NOT_CONNECTED"),
        f"{base}/unlink": route("Unlinked from the phone → logged_out, session deleted", "DEVICE_NOT_CONNECTED"),
        f"{base}/sent": route("What the simulated WhatsApp received (last 1,000)", data=sent, method="get"),
    }


def _accounts() -> dict[str, Any]:
    signup = obj(
        ("username", "email", "password"),
        username={**STR, "examples": ["alice"]},
        email={**STR, "format": "email", "examples": ["alice@example.com"]},
        password={**STR, "format": "password"},
    )
    login = obj(("password",), email=STR, username=STR, password={**STR, "format": "password"})
    session_cookie = {
        "Set-Cookie": {
            "schema": STR,
            "description": "`gw_session`: HttpOnly, SameSite=Lax, Secure behind https, 7 days",
        }
    }
    session_ok = ok(ref("AuthSession"))
    session_ok["200"]["headers"] = session_cookie
    revoked_key = obj(("id", "revoked"), id=INT, revoked={"const": True})
    deleted_account = obj(
        ("userId", "deleted"),
        userId=INT,
        deleted={"const": True},
        devicesRemoved={**arr(STR), "description": "tokens of the devices removed"},
    )
    me_patch = obj(
        webhookUrl=SCHEMAS["WebhookTarget"]["properties"]["webhookUrl"],
        webhookEvents=nullable(arr(ref("WebhookEvent"))),
    )
    return {
        "/auth/signup": {
            "post": op(
                "accounts",
                "Create an account (open when ALLOW_SIGNUP=true, else admin key only)",
                {**session_ok, **errors(*KEYED, "FORBIDDEN", *BODY)},
                requestBody=body(signup),
                security=[{}, *SECURITY],
            )
        },
        "/auth/login": {
            "post": op(
                "accounts",
                "Log in with email or username; one message for unknown user and wrong password",
                {**session_ok, **errors(*KEYED, *BODY)},
                requestBody=body(login),
                security=[],
            )
        },
        "/auth/logout": {
            "post": op(
                "accounts",
                "Revoke the session token and clear the cookie",
                {**ok(obj(("revoked",), revoked={**INT, "description": "sessions revoked"})), **errors(*KEYED)},
            )
        },
        "/auth/me": {
            "get": op("accounts", "The calling account", {**ok(ref("Account")), **errors(*KEYED, "FORBIDDEN")}),
            "patch": op(
                "accounts",
                "Set the account's own webhook target (no private/loopback URLs unless WEBHOOK_ALLOW_PRIVATE=true)",
                {**ok(ref("Account")), **errors(*KEYED, "FORBIDDEN", *BODY)},
                requestBody=body(me_patch),
            ),
        },
        "/auth/keys": {
            "post": op(
                "accounts",
                "Create an API key (shown once, stored hashed)",
                {**ok(ref("ApiKey")), **errors(*KEYED, "FORBIDDEN", *BODY)},
                requestBody=body(obj(("name",), name={**STR, "minLength": 1, "maxLength": 64})),
            ),
            "get": op(
                "accounts",
                "The account's API keys",
                {**ok(obj(("keys",), keys=arr(ref("ApiKey")))), **errors(*KEYED, "FORBIDDEN")},
            ),
        },
        "/auth/keys/{id}": {
            "parameters": [id_param("key id")],
            "delete": op(
                "accounts",
                "Revoke an API key",
                {**ok(revoked_key), **errors(*KEYED, "FORBIDDEN", "INVALID_REQUEST", "NOT_FOUND")},
            ),
        },
        "/auth/accounts": {
            "get": op(
                "accounts",
                "All accounts (admin key)",
                {
                    **ok(obj(("accounts", "count"), accounts=arr(ref("Account")), count=INT)),
                    **errors(*KEYED, "FORBIDDEN"),
                },
            ),
        },
        "/auth/accounts/{id}": {
            "parameters": [id_param("account id")],
            "delete": op(
                "accounts",
                "Delete an account with its keys and sessions (admin key)",
                {**ok(deleted_account), **errors(*KEYED, "FORBIDDEN", "INVALID_REQUEST", "NOT_FOUND")},
            ),
        },
    }


def _operations() -> dict[str, Any]:
    text = {"content": {"text/plain": {"schema": STR}}}
    html = {"200": {"description": "HTML page", "content": {"text/html": {"schema": STR}}}}
    ws_params = [
        query("apiKey", STR, "the key, for browsers that cannot set headers"),
        query("tokens", STR, "comma list: subscribe to these devices at connect"),
        query("events", STR, "comma list: subscribe to these events at connect"),
    ]
    return {
        "/metrics": {
            "get": op(
                "operations",
                "Prometheus metrics (text format)",
                {"200": {"description": "Prometheus text exposition", **text}, **errors(*KEYED)},
            )
        },
        "/openapi.json": {
            "get": op(
                "operations",
                "This document",
                {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **errors("RATE_LIMITED"),
                },
                **PUBLIC,
            )
        },
        "/docs": {"get": op("operations", "Swagger UI", {**html, **errors("RATE_LIMITED")}, **PUBLIC)},
        "/": {"get": op("pages", "Pairing page", {**html, **errors("RATE_LIMITED")}, **PUBLIC)},
        "/console": {"get": op("pages", "WebSocket console", {**html, **errors("RATE_LIMITED")}, **PUBLIC)},
        "/ws": {
            "get": op(
                "websocket",
                "WebSocket: live events and actions (see API.md). An unauthenticated upgrade is refused (HTTP 403).",
                {
                    "101": {"description": 'Switching Protocols; first frame `{"event":"connected",...}`'},
                    "403": {"description": "upgrade refused: missing or invalid key"},
                    **{k: v for k, v in errors().items() if k != "500"},
                },
                parameters=ws_params,
                security=[*SECURITY, {"apiKeyQuery": []}],
            )
        },
    }


SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}, {"sessionCookie": []}]


@functools.cache
def _document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for part in (_health, _devices, _messaging, _contacts_and_webhooks, _sandbox, _accounts, _operations):
        paths.update(part())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wa-gateway",
            "version": __version__,
            "description": (
                "Self-hosted WhatsApp gateway. Every JSON body is an envelope: "
                "`{success, data, message, meta}` or `{success: false, error: {code, message}, meta}`; "
                "switch on `error.code`. `/sandbox/*` exists only with `WA_DRIVER=sandbox`."
            ),
        },
        "servers": [{"url": "/"}],
        "security": SECURITY,
        "tags": [
            {"name": t}
            for t in (
                "health",
                "devices",
                "messages",
                "contacts",
                "webhooks",
                "sandbox",
                "accounts",
                "operations",
                "pages",
                "websocket",
            )
        ],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                # Any known path with a method it does not serve; listed once here rather than on every operation.
                "MethodNotAllowed": {
                    "description": f"`METHOD_NOT_ALLOWED`: {WHEN['METHOD_NOT_ALLOWED']}; `Allow` names the methods",
                    "content": {"application/json": {"schema": ref("Error")}},
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key or session token"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "gw_session"},
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "apiKey"},
            },
        },
    }


def document(sandbox: bool = True) -> dict[str, Any]:
    """The OpenAPI document; without the sandbox driver, ``/sandbox/*`` is left out (those routes do not exist)."""
    doc = copy.deepcopy(_document())
    if not sandbox:
        doc["paths"] = {p: v for p, v in doc["paths"].items() if not p.startswith("/sandbox/")}
        doc["tags"] = [t for t in doc["tags"] if t["name"] != "sandbox"]
    return doc

"""The OpenAPI 3.1 document, generated from the models and the operation table.

Schemas come from the msgspec models (:mod:`gateway.api.models`) that the routes decode
and answer with, so the document cannot drift from the code; the operations (paths,
operationIds, parameters, error codes) from :data:`gateway.api.operations.OPERATIONS`.

Written for client generators (``tests/test_generated_client.py`` drives the API through
``openapi-python-client``): stable operationIds; one ``Error`` response component that
every error status references, with the codes an operation can answer listed in its
description and in ``x-error-codes``; one success envelope per data model
(``<Model>Envelope``); files as their own operations with one media type each; request
fields the route requires marked required and not nullable; and a top-level
``webhooks`` section describing every webhook event's body and headers.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import msgspec

from gateway import __version__
from gateway.api.errors import STATUS
from gateway.api.models import events
from gateway.api.models.base import DEVICE_STATUSES, EVENT_NAMES, Body
from gateway.api.operations import OPERATIONS, Op, Param

Schema = dict[str, Any]
REF = "#/components/schemas/{name}"

WHEN: dict[str, str] = {
    "UNAUTHORIZED": "missing or invalid key",
    "FORBIDDEN": "valid key, but the route needs the admin key or the resource belongs to another account",
    "RATE_LIMITED": "over the limit; `Retry-After` header in seconds",
    "INVALID_REQUEST": "body not JSON, not an object, wrong field types, bad query parameters",
    "PAYLOAD_TOO_LARGE": "body over 1 MiB",
    "MISSING_TOKEN": "`token` absent or empty",
    "INVALID_METHOD": "`method` not `qr`/`code`",
    "INVALID_PHONE": "a phone number (`token`, `to`, `phone`, `from`) fails the phone rules",
    "INVALID_MESSAGE": "no content field or two, text empty/whitespace or over 65,536 characters, "
    "a poll with fewer than 2 or more than 12 options, a location out of range, …",
    "INVALID_MEDIA": "bad base64, empty, unsupported, conversion failed, unknown or expired upload id, "
    "two sources or none",
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
    "DEVICE_MOVING": "cluster mode: the device is changing nodes (or runs on another node); `Retry-After` in seconds",
    "QUOTA_EXCEEDED": "the account already holds `ACCOUNT_MAX_DEVICES` devices",
    "UNSUPPORTED_MEDIA_TYPE": "a `Content-Type` that is not JSON",
    "REQUEST_TIMEOUT": "the request line and headers did not arrive within `HEADER_TIMEOUT_MS`",
    "HEADERS_TOO_LARGE": "request line and headers over 16 KiB",
    "TOO_MANY_CONNECTIONS": "`MAX_CONNECTIONS` connections are already open",
    "SHUTTING_DOWN": "the gateway stopped before the request finished arriving",
    "MEDIA_TOO_LARGE": "media over `MEDIA_MAX_BYTES` (upload, base64 or URL body)",
    "MEDIA_FETCH_FAILED": "the media URL is unreachable, non-2xx, a refused address, too many redirects or timed out",
}

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}, {"sessionCookie": []}]
TAGS = (
    "health",
    "devices",
    "messages",
    "groups",
    "media",
    "contacts",
    "campaigns",
    "webhooks",
    "sandbox",
    "accounts",
    "operations",
)

ERROR_SCHEMAS: dict[str, Schema] = {
    "Meta": {
        "type": "object",
        "properties": {"timestamp": {"type": "string", "format": "date-time"}, "requestId": {"type": "string"}},
        "required": ["timestamp", "requestId"],
    },
    "ErrorCode": {"type": "string", "enum": list(STATUS), "description": "switch on this"},
    "ErrorDetail": {
        "type": "object",
        "properties": {"code": {"$ref": REF.format(name="ErrorCode")}, "message": {"type": "string"}},
        "required": ["code", "message"],
    },
    "Error": {
        "type": "object",
        "description": "The error envelope; switch on `error.code`.",
        "properties": {
            "success": {"type": "boolean", "const": False},
            "error": {"$ref": REF.format(name="ErrorDetail")},
            "meta": {"$ref": REF.format(name="Meta")},
        },
        "required": ["success", "error", "meta"],
    },
}


def _ref(name: str) -> Schema:
    return {"$ref": REF.format(name=name)}


def _tidy(schema: Any) -> Any:
    """msgspec's schema in the shape generators read best: ``title`` and closed objects dropped
    (new response fields must not break old clients), enums typed, single-value enums as ``const``."""
    if isinstance(schema, list):
        return [_tidy(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _tidy(v) for k, v in schema.items() if k != "title" and not (k == "additionalProperties" and v is False)}
    enum = out.get("enum")
    if enum is not None and "type" not in out:
        kinds = {type(v) for v in enum}
        if kinds == {str}:
            out["type"] = "string"
        elif kinds == {bool}:
            out["type"] = "boolean"
    if enum is not None and len(enum) == 1 and out.get("type") == "string":
        out["const"] = enum[0]
    if out.get("required") == []:
        del out["required"]
    return out


# Enumerations used by several models: one named component each, so a generated client has one type.
NAMED_ENUMS: dict[frozenset[str], str] = {
    frozenset(EVENT_NAMES): "WebhookEvent",
    frozenset(DEVICE_STATUSES): "DeviceStatus",
}


def _name_enums(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_name_enums(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    enum = schema.get("enum")
    if enum is not None and len(enum) > 1 and frozenset(enum) in NAMED_ENUMS:
        rest = {k: v for k, v in schema.items() if k not in ("enum", "type")}
        return {**rest, **_ref(NAMED_ENUMS[frozenset(enum)])}
    return {k: _name_enums(v) for k, v in schema.items()}


def _not_null(schema: Schema) -> Schema:
    """``anyOf [X, null]`` → X (a field the route requires is never usefully null)."""
    options = schema.get("anyOf")
    if options and len(options) == 2 and {"type": "null"} in options:
        kept = next(o for o in options if o != {"type": "null"})
        return {**{k: v for k, v in schema.items() if k not in ("anyOf", "default")}, **kept}
    return schema


def _request_schema(model: type[Body], schema: Schema) -> Schema:
    """Bodies decode with every field optional (the route's ordered checks own the codes for a
    missing one); the document says what a caller must send."""
    required = list(model.__required__)
    props = {
        name: _not_null(s) if name in required else {k: v for k, v in s.items() if k != "default"}
        for name, s in schema["properties"].items()
    }
    out = {**schema, "properties": props}
    if required:
        out["required"] = required
    return out


def _models() -> list[type[Any]]:
    found: list[type[Any]] = []
    for op in OPERATIONS:
        for model in (op.data, op.body):
            if model is not None and model not in found:
                found.append(model)
    return found + [m for m in events.EVENTS.values() if m not in found]


def _components() -> dict[str, Schema]:
    models = _models()
    _, raw = msgspec.json.schema_components(models, ref_template=REF)
    schemas: dict[str, Schema] = {name: _tidy(s) for name, s in raw.items()}
    for model in models:
        if isinstance(model, type) and issubclass(model, Body):
            schemas[model.__name__] = _request_schema(model, schemas[model.__name__])
    for op in OPERATIONS:
        name = _envelope_name(op)
        if op.download is None and name not in schemas:
            schemas[name] = _envelope(op)
    named = {name: {"type": "string", "enum": sorted(values)} for values, name in NAMED_ENUMS.items()}
    return {**ERROR_SCHEMAS, **named, **_name_enums(dict(sorted(schemas.items())))}


def _envelope_name(op: Op) -> str:
    return f"{op.data.__name__}Envelope" if op.data is not None else "OkEnvelope"


def _envelope(op: Op) -> Schema:
    data = _ref(op.data.__name__) if op.data is not None else {"type": "null"}
    return {
        "type": "object",
        "description": "The success envelope.",
        "properties": {
            "success": {"type": "boolean", "const": True},
            "data": data,
            "message": {"type": "string"},
            "meta": _ref("Meta"),
        },
        "required": ["success", "data", "message", "meta"],
    }


def _parameter(p: Param) -> Schema:
    out: Schema = {"name": p.name, "in": p.where, "required": p.required, "schema": p.schema}
    if p.description:
        out["description"] = p.description
    return out


def _success(op: Op) -> Schema:
    if op.download is not None:
        content = {op.download.media_type: {"schema": op.download.schema}}
        response: Schema = {"description": op.download.description, "content": content}
    else:
        response = {"description": "success", "content": {"application/json": {"schema": _ref(_envelope_name(op))}}}
    if op.headers:
        response["headers"] = {name: {"schema": schema} for name, schema in op.headers.items()}
    return response


def _operation(op: Op) -> Schema:
    codes = op.codes()
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(STATUS[code], []).append(code)
    responses: Schema = {"200": _success(op)}
    for status in sorted(by_status):
        responses[str(status)] = {"$ref": "#/components/responses/Error"}
    errors = "; ".join(f"`{c}` ({STATUS[c]}): {WHEN[c]}" for c in codes)
    out: Schema = {
        "operationId": op.operation_id,
        "tags": [op.tag],
        "summary": op.summary,
        "description": f"Errors: {errors}.",
        "x-error-codes": codes,
    }
    if op.params:
        out["parameters"] = [_parameter(p) for p in op.params]
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body.__name__)}}}
    elif op.upload is not None:
        out["requestBody"] = {"required": True, "content": op.upload}
    out["responses"] = responses
    if op.optional_auth:
        out["security"] = [{}, *SECURITY]
    elif op.public:
        out["security"] = []
    return out


def _webhooks() -> Schema:
    """CONTRACT §6: one POST per event to each subscribed target, signed with that target's secret."""
    signed = (
        "present when the target is signed (the operator's WEBHOOK_URL with WEBHOOK_SECRET; a tenant's target "
        "with its device's or account's secret)"
    )
    headers = [
        ("User-Agent", {"type": "string", "examples": [f"wa-gateway/{__version__}"]}, "always", True),
        (
            "webhook-id",
            {"type": "string"},
            f"Standard Webhooks: the same on every attempt of one delivery; {signed}",
            False,
        ),
        (
            "webhook-timestamp",
            {"type": "string", "pattern": "^[0-9]+$"},
            f"unix seconds of this attempt; {signed}",
            False,
        ),
        (
            "webhook-signature",
            {"type": "string", "pattern": "^v1,"},
            'v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">; key: the base64-decoded rest of a `whsec_` '
            "secret, else its UTF-8 bytes; for 24 h after an account rotates its secret, a second v1 signature "
            f"(previous secret) follows, space-separated; {signed}",
            False,
        ),
        ("X-Webhook-Signature", {"type": "string"}, f"hex HMAC-SHA256 of the raw body; {signed}", False),
    ]
    parameters = [{"name": n, "in": "header", "required": r, "schema": s, "description": d} for n, s, d, r in headers]
    out: Schema = {}
    for name, model in events.EVENTS.items():
        out[name] = {
            "post": {
                "operationId": "on" + "".join(part.title() for part in name.replace("_", ".").split(".")),
                "tags": ["webhooks"],
                "summary": f"`{name}` delivered to your webhook URL",
                "description": (
                    "At least once, possibly out of order across events: order by `timestamp`, "
                    "deduplicate by `webhook-id`. A 2xx ends the delivery; anything else is retried with backoff."
                ),
                "parameters": parameters,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(model.__name__)}}},
                "responses": {"2XX": {"description": "received; any other answer is retried"}},
            }
        }
    return out


@functools.cache
def _document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wa-gateway",
            "version": __version__,
            "description": (
                "Self-hosted WhatsApp gateway. Every JSON body is an envelope: "
                "`{success, data, message, meta}` or `{success: false, error: {code, message}, meta}`; "
                "switch on `error.code`. `/sandbox/*` exists only with `WA_DRIVER=sandbox`. "
                "The WebSocket (`GET /ws`) and the browser pages are described in API.md."
            ),
        },
        "servers": [{"url": "/"}],
        "security": SECURITY,
        "tags": [{"name": t} for t in TAGS],
        "paths": paths,
        "webhooks": _webhooks(),
        "components": {
            "schemas": _components(),
            "responses": {
                "Error": {
                    "description": "The error envelope; `error.code` says which (see the operation's description).",
                    "headers": {
                        "Retry-After": {
                            "schema": {"type": "integer"},
                            "description": "429 and 503 `DEVICE_MOVING`: seconds to wait",
                        },
                        "Allow": {"schema": {"type": "string"}, "description": "405 only: the methods the path serves"},
                    },
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key or session token"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "gw_session"},
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

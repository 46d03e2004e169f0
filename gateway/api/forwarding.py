"""Any node answers any call (CONTRACT §14): a call about a device that lives on another node is
forwarded to that node (:mod:`gateway.cluster.forward`), which runs it through its own app; the status,
headers and body come back verbatim.

Which calls: every operation of :data:`gateway.api.operations.OPERATIONS` that names a device — a
``{token}`` in its path, or a ``token`` in its JSON body — except the contacts routes, which read only
the shared store and are answered by whichever node gets them (the CSV export streams any number of
rows: it is never carried whole). Everything else (accounts, deliveries, media, health) is answered
locally from the shared store.

What travels: the method, path, query, the request's headers (credentials, ``Idempotency-Key``,
``Content-Type``, ``X-Request-ID``, …; no hop-by-hop or ``X-Forwarded-*`` ones: the client's address and
scheme travel as the first node saw them) and the body. The owner's gate authenticates the call again but
does not count it against the rate limit a second time. Nobody serving the device, no answer in time,
or the bus down → ``503 DEVICE_MOVING`` with ``Retry-After`` — unless the device is in no node's
registry at all: then the call runs where it arrived and answers as for any unknown device
(``DEVICE_NOT_FOUND``; ``POST /devices`` creates it there). A body or an answer larger than one bus
message (``max_payload``, 1 MB by default) is ``413 PAYLOAD_TOO_LARGE`` / ``500 INTERNAL_ERROR``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.envelope import error_response, fail
from gateway.api.errors import ApiError
from gateway.api.operations import OPERATIONS
from gateway.cluster.bus import BusUnavailable
from gateway.cluster.forward import FORWARDED, Answer
from gateway.phones import InvalidPhone, normalize
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.api.forwarding")

# Not carried: they describe one hop (the answer's length is set again by the first node's server).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"upgrade",
        b"te",
        b"trailer",
        b"proxy-connection",
        b"content-length",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"forwarded",
    }
)


@dataclass(frozen=True, slots=True)
class DeviceRoute:
    method: str
    path: str  # the operation's path template: the log and metric label of a forwarded call
    pattern: re.Pattern[str]
    in_body: bool  # the token is the JSON body's ``token``, not the path's


def device_routes() -> list[DeviceRoute]:
    """The operations that name a device, from the operations table (one list, not two)."""
    routes = []
    for op in OPERATIONS:
        where = op.names_device
        if where is not None:
            regex = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(op.path))
            routes.append(DeviceRoute(op.method.upper(), op.path, re.compile(f"^{regex}$"), where == "body"))
    return routes


ROUTES = device_routes()


class _TokenOnly(msgspec.Struct):
    token: Any = None


_token_decoder = msgspec.json.Decoder(_TokenOnly)


def match(scope: Scope) -> tuple[DeviceRoute, str | None] | None:
    """The device route this request is (and its path token, when in the path), or None."""
    method, path = scope["method"], scope["path"]
    for route in ROUTES:
        if route.method == method:
            m = route.pattern.match(path)
            if m is not None:
                return route, None if route.in_body else m.group("token")
    return None


async def dispatch(rt: Runtime, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
    """Run the call here, or forward it to the device's node (the gate calls this in a cluster)."""
    forwarder = rt.forwarder
    found = match(scope) if forwarder is not None else None
    if forwarder is None or found is None:
        await app(scope, receive, send)
        return
    route, raw = found
    body = b""
    try:
        if route.in_body:
            body = await _read_body(receive)
            raw = _body_token(body, scope)
            receive = _replay(body, receive)
        token = _canonical(raw, rt.settings.default_country_code)
        if token is None or rt.devices.get(token) is not None:
            await app(scope, receive, send)  # bad tokens answer as usual; local devices run here
            return
        if scope.get(FORWARDED):
            # Sent here as the owner, but the device left meanwhile: never forwarded twice.
            await _moving(rt, token)(scope, receive, send)
            return
        if not route.in_body:
            body = await _read_body(receive)
    except ApiError as exc:  # the gate's body limit, met while the body was read here
        await error_response(exc)(scope, receive, send)
        return
    scope["route"] = route  # the access log and metrics name the operation, as for a local call
    if len(body) > forwarder.max_body:
        message = f"a body forwarded to the device's node is limited to {forwarder.max_body} bytes"
        await fail("PAYLOAD_TOO_LARGE", message, 413)(scope, receive, send)
        return
    known: list[bool] = []  # whether the registry has the device, asked once at most

    async def exists() -> bool:
        if not known:
            known.append(await rt.store.get_device(token) is not None)
        return known[0]

    try:
        status, headers, out = await forwarder.call(token, request_meta(scope), body, exists)
    except BusUnavailable as exc:
        if exc.why in ("no_responders", "disconnected") and not await exists():
            await app(scope, _replay(body, receive), send)  # no such device anywhere: answered here
            return
        log.info("forward.unavailable", token=token, why=exc.why)
        await _moving(rt, token)(scope, receive, send)
        return
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers if k != "x-request-id"]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": out})


async def run_forwarded(app: ASGIApp, max_answer: int, meta: dict[str, Any], body: bytes) -> Answer:
    """A call another node forwarded, run through this node's whole app (its gate included)."""
    client = meta.get("client")
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": meta["method"],
        "scheme": meta["scheme"],
        "path": meta["path"],
        "raw_path": meta["path"].encode(),
        "query_string": meta["query"].encode("latin-1"),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in meta["headers"]],
        "client": (client[0], client[1]) if client else None,
        "server": None,
        "state": {},
        FORWARDED: True,
    }
    status, headers, out = await _collect(app, scope, body)
    if len(out) > max_answer:
        message = f"the answer ({len(out)} bytes) is larger than a forwarded call carries ({max_answer})"
        return await _collect(fail("INTERNAL_ERROR", message, 500), scope, b"")
    return status, headers, out


def request_meta(scope: Scope) -> dict[str, Any]:
    """The call as the owner needs it; the request id this node gave it goes along (the envelope's
    ``requestId`` and the ``X-Request-ID`` header must agree)."""
    client = scope.get("client")
    headers = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in scope["headers"]
        if k.lower() not in HOP_BY_HOP and k != b"x-request-id"
    ]
    rid = scope.get("state", {}).get("request_id")
    if rid:
        headers.append(("x-request-id", rid))
    return {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope.get("query_string", b"").decode("latin-1"),
        "scheme": scope.get("scheme", "http"),
        "client": list(client) if client else None,
        "headers": headers,
    }


def _moving(rt: Runtime, token: str) -> ASGIApp:
    """As the device manager answers it (gateway.devices.manager): the ownership's Retry-After."""
    retry = rt.ownership.retry_after_s if rt.ownership is not None else 2
    return fail(
        "DEVICE_MOVING",
        f"device {token} is being moved to another node; try again shortly",
        503,
        {"Retry-After": str(retry)},
    )


def _canonical(raw: Any, country_code: str) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        return normalize(raw, country_code)
    except InvalidPhone:
        return None


def _body_token(body: bytes, scope: Scope) -> Any:
    for name, value in scope["headers"]:
        if name == b"content-type" and b"json" not in value.lower():
            return None  # multipart and other bodies: run where they arrive
    try:
        return _token_decoder.decode(body).token if body else None
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # the route itself answers the bad body


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return b"".join(chunks)


def _replay(body: bytes, then: Receive | None = None) -> Receive:
    """A ``receive`` that gives ``body`` in one message, then what ``then`` gives (the client going
    away), or nothing ever (a call run for another node: its client is that node)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if then is not None:
            return await then()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


async def _collect(app: ASGIApp, scope: Scope, body: bytes) -> Answer:
    status = 500
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, _replay(body), send)
    return status, headers, b"".join(chunks)

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

Two kinds of call reach the owner another way, through :func:`to_owner` (the one place that asks the
bus and turns its failures into the contract's codes):

- A multipart send (``POST /messages`` with a ``file`` part, up to ``MEDIA_MAX_BYTES``) names its device
  in a form field that may come after the file, and the file does not fit one bus message. The node that
  gets it reads it as a local send does — the file streamed into the media store, never held in memory —
  and, when the device lives elsewhere, stores it as an upload there (``MEDIA_DIR`` is one volume every
  node shares, the row in the shared store) and forwards the same multipart call without its file part:
  the form's text fields, and the upload's id in :data:`UPLOAD_HEADER`, which the owner honours on a
  forwarded call only (:func:`forwarded_upload`) and resolves under the caller's account like any
  upload id. The owner then runs the very multipart route, so the checks, codes and the
  ``Idempotency-Key`` fingerprint (the file's SHA-256) are the local ones (gateway.api.routes.message_media).
- The WebSocket's per-device requests (``get_state``, ``get_qr``) are the REST reads ``GET
  /devices/{token}`` and ``GET /devices/{token}/qr`` run on the owner (:func:`get_from_owner`): one
  protocol on the bus, and the owner's gate and routes decide who may see the device, as for every
  forwarded call — the credential that opened the socket goes along and is checked again.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
import structlog
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.envelope import error_response, fail
from gateway.api.errors import STATUS, ApiError, device_moving
from gateway.api.operations import OPERATIONS
from gateway.auth import Principal
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
        b"wa-forwarded-upload",  # set by the node that forwards a multipart send, never taken from a client
    }
)
UPLOAD_HEADER = "wa-forwarded-upload"  # a forwarded multipart send: the upload its file part became


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
    if route.in_body and not _json_body(scope):
        # A multipart send (up to MEDIA_MAX_BYTES) streams into its route, never into memory here: the
        # route finds its device in the form and forwards it itself (forward_upload).
        await app(scope, receive, send)
        return
    try:
        if route.in_body:
            body = await _read_body(receive)
            raw = _body_token(body)
            receive = _replay(body, receive)
        token = _canonical(raw, rt.settings.default_country_code)
        if token is None or rt.devices.get(token) is not None:
            await app(scope, receive, send)  # bad tokens answer as usual; local devices run here
            return
        if scope.get(FORWARDED):
            # Sent here as the owner, but the device left meanwhile: never forwarded twice.
            await error_response(moving(rt, token))(scope, receive, send)
            return
        if not route.in_body:
            body = await _read_body(receive)
    except ApiError as exc:  # the gate's body limit, met while the body was read here
        await error_response(exc)(scope, receive, send)
        return
    scope["route"] = route  # the access log and metrics name the operation, as for a local call
    try:
        answer = await to_owner(rt, token, request_meta(scope), body)
    except ApiError as exc:
        await error_response(exc)(scope, receive, send)
        return
    if answer is None:
        await app(scope, _replay(body, receive), send)  # no such device anywhere: answered here
        return
    status, headers, out = answer
    await send({"type": "http.response.start", "status": status, "headers": _answer_headers(headers)})
    await send({"type": "http.response.body", "body": out})


async def to_owner(rt: Runtime, token: str, meta: dict[str, Any], body: bytes) -> Answer | None:
    """The answer of the node that runs ``token`` (not this one) to the call ``meta``/``body``; None
    when no node's registry has the device (the caller answers it here, as for any unknown device).
    Nobody serving it, no answer in time or the bus down → :class:`ApiError` ``DEVICE_MOVING``; a body
    larger than one bus message → ``PAYLOAD_TOO_LARGE``."""
    forwarder = rt.forwarder
    assert forwarder is not None, "only a cluster forwards"
    if len(body) > forwarder.max_body:
        message = f"a body forwarded to the device's node is limited to {forwarder.max_body} bytes"
        raise ApiError("PAYLOAD_TOO_LARGE", message)
    known: list[bool] = []  # whether the registry has the device, asked once at most

    async def exists() -> bool:
        if not known:
            known.append(await rt.store.get_device(token) is not None)
        return known[0]

    try:
        return await forwarder.call(token, meta, body, exists)
    except BusUnavailable as exc:
        if exc.why in ("no_responders", "disconnected") and not await exists():
            return None
        log.info("forward.unavailable", token=token, why=exc.why)
        raise moving(rt, token) from exc


def undelivered(exc: ApiError) -> bool:
    """Whether an error of :func:`to_owner` / :func:`forward_upload` means the call reached no node (so
    none runs it): refused before sending, nobody serving the device, or the bus down — not a call that
    went out and got no answer in time."""
    cause = exc.__cause__
    return exc.code != "DEVICE_MOVING" or (
        isinstance(cause, BusUnavailable) and cause.why in ("no_responders", "disconnected")
    )


def elsewhere(rt: Runtime, token: str) -> bool:
    """Whether a call about ``token`` is another node's to answer: a cluster, and the device not here."""
    return rt.forwarder is not None and rt.devices.get(token) is None


def is_forwarded(scope: Scope) -> bool:
    """Whether this call was forwarded here by another node (never set by a client)."""
    return bool(scope.get(FORWARDED))


# -- multipart sends ---------------------------------------------------------------------------------


async def forward_upload(
    rt: Runtime, scope: Scope, token: str, fields: dict[str, str], upload_id: str
) -> Answer | None:
    """A multipart send whose file was stored here as upload ``upload_id``, run on ``token``'s node: the
    same call with the form's ``fields`` only (a few KiB at most: never the file) and the upload's id in
    :data:`UPLOAD_HEADER`. As :func:`to_owner`."""
    body, content_type = form_body(fields)
    meta = request_meta(scope)
    meta["headers"] = [
        *((k, v) for k, v in meta["headers"] if k.lower() != "content-type"),
        ("content-type", content_type),
        (UPLOAD_HEADER, upload_id),
    ]
    return await to_owner(rt, token, meta, body)


def forwarded_upload(scope: Scope) -> str | None:
    """The upload a forwarded multipart send's file part became (:func:`forward_upload`); None for any
    other call — a client's copy of the header is never believed (nor carried: :data:`HOP_BY_HOP`)."""
    if not scope.get(FORWARDED):
        return None
    raw = UPLOAD_HEADER.encode()
    for name, value in scope["headers"]:
        if name == raw:
            return str(value.decode("latin-1"))
    return None


def form_body(fields: dict[str, str]) -> tuple[bytes, str]:
    """``fields`` as a ``multipart/form-data`` body and its Content-Type. The names are the route's own
    (plain words); a value cannot hold the boundary, which is random and never shown to the client."""
    boundary = secrets.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        for name, value in fields.items()
    ]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def as_response(answer: Answer) -> Response:
    """The owner's answer, verbatim, as a route's response (the gate adds this node's request id)."""
    status, headers, out = answer
    response = Response(out, status)
    response.raw_headers = _answer_headers(headers)
    return response


# -- the WebSocket's per-device requests --------------------------------------------------------------


async def get_from_owner(rt: Runtime, conn: HTTPConnection, principal: Principal, token: str, path: str) -> Any:
    """``GET path`` (a read about ``token``) as the device's node answers it, for a connection that is no
    HTTP call of its own: the WebSocket. Its ``data`` on success; the owner's error (``DEVICE_NOT_FOUND``
    for a device the caller may not see, as for one that does not exist) as an :class:`ApiError`; None
    when no node has the device. The credential that opened the connection goes along (a ``?apiKey=``
    as ``X-API-Key``) and the owner's gate authenticates it again, as for any forwarded call."""
    credential = rt.auth.credential_header(conn, principal, allow_query=True)
    if credential is None:
        raise ApiError("UNAUTHORIZED", "missing or invalid API key")
    headers = [credential]
    rid = conn.scope.get("state", {}).get("request_id")
    if rid:
        headers.append(("x-request-id", rid))
    client = conn.scope.get("client")
    meta = {
        "method": "GET",
        "path": path,
        "query": "",
        "scheme": "https" if conn.scope.get("scheme") in ("https", "wss") else "http",
        "client": list(client) if client else None,
        "headers": headers,
    }
    answer = await to_owner(rt, token, meta, b"")
    return None if answer is None else unwrap(answer)


def unwrap(answer: Answer) -> Any:
    """An answer's envelope: its ``data`` on success, else its error as an :class:`ApiError` (with the
    ``Retry-After`` it carried)."""
    status, headers, out = answer
    try:
        envelope = orjson.loads(out)
    except orjson.JSONDecodeError:
        envelope = None
    if not isinstance(envelope, dict):
        raise ApiError("INTERNAL_ERROR", f"the device's node answered {status} without an envelope")
    if status < 400 and envelope.get("success") is True:
        return envelope.get("data")
    error = envelope.get("error")
    code, message = "INTERNAL_ERROR", f"the device's node answered {status}"
    if isinstance(error, dict) and error.get("code") in STATUS:
        code, message = error["code"], str(error.get("message", message))
    retry = [v for k, v in headers if k.lower() == "retry-after"]
    raise ApiError(code, message, {"Retry-After": retry[0]} if retry else None)


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


def moving(rt: Runtime, token: str) -> ApiError:
    """As the device manager answers it (gateway.devices.manager): the ownership's Retry-After."""
    return device_moving(token, rt.ownership.retry_after_s if rt.ownership is not None else 2)


def _answer_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers if k != "x-request-id"]


def _canonical(raw: Any, country_code: str) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        return normalize(raw, country_code)
    except InvalidPhone:
        return None


def _json_body(scope: Scope) -> bool:
    """JSON, or no Content-Type at all (the route answers that as it would anywhere)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return True


def _body_token(body: bytes) -> Any:
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

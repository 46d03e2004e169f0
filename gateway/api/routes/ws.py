"""``GET /ws``: live events and a small action protocol (CONTRACT §5).

Each connection has a writer task draining its bounded queue; the reader
answers actions through the same queue, so replies and events keep their
order. A reader too slow to keep up is closed with 1013.

Hardening (issue 13): the upgrade is refused with an HTTP answer in the
envelope when the client address is over its budget of failed authentications
(429) or a valid caller is over its rate limit (429), and, for the session
cookie, when the page's ``Origin`` is not the gateway's (403, see
:mod:`gateway.api.csrf`). An open socket is closed with 4401 the moment its
credential (key, session, account) is revoked. A frame may list at most
:data:`MAX_LIST` tokens or events, and each connection may send
:data:`FRAME_RATE` frames a second (bursts of :data:`FRAME_BURST`); a frame over
that budget is answered with an error frame and dropped, and a client that keeps
on sending :data:`ABUSE_LIMIT` refused frames in a row is closed with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import structlog
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.api import forwarding
from gateway.api.csrf import cross_site_refusal, same_origin
from gateway.api.envelope import fail
from gateway.api.errors import ApiError
from gateway.api.gate import client_address
from gateway.auth import Principal
from gateway.events import CLIENT_EVENTS, Client
from gateway.phones import InvalidPhone, normalize
from gateway.runtime import Runtime, runtime
from gateway.timestamps import now_iso

log = structlog.get_logger("gateway.ws")
MAX_FRAME = 64 * 1024
MAX_LIST = 100  # tokens or events in one subscribe (frame or URL)
FRAME_RATE = 20.0  # client frames per second, sustained …
FRAME_BURST = 50  # … with bursts of this many
ABUSE_LIMIT = 200  # refused frames in a row before the connection is closed (1008)
REVOKED = 4401  # close code: the credential that opened the socket was revoked


class FrameBudget:
    """A token bucket for one connection's client frames, on an injectable clock."""

    def __init__(
        self, rate: float = FRAME_RATE, burst: int = FRAME_BURST, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self.at = clock()
        self.refused_in_row = 0

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.refused_in_row = 0
            return True
        self.refused_in_row += 1
        return False


def _frame(event: str, data: Any = None, token: str | None = None, message: str | None = None) -> str:
    out: dict[str, Any] = {"event": event}
    if token is not None:
        out["token"] = token
    if data is not None or event in ("qrcode", "session_state"):
        out["data"] = data
    if message is not None:
        out["message"] = message
    out["timestamp"] = now_iso()
    return orjson.dumps(out).decode()


def _split(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


class Session:
    budget_factory: Callable[[], FrameBudget] = FrameBudget  # a test may give the budget its own clock

    def __init__(self, ws: WebSocket, rt: Runtime, principal: Principal) -> None:
        self.ws = ws
        self.rt = rt
        self.p = principal
        self.client = Client(principal.account_id, principal.is_admin, rt.settings.ws_queue_size)
        self.budget = self.budget_factory()
        # An action that reads the store or asks another node, for the reader to await (replies stay in order).
        self.pending: Coroutine[Any, Any, None] | None = None
        self.close_code: int | None = None  # set by the reader when it ends the connection itself

    def send(self, event: str, data: Any = None, token: str | None = None, message: str | None = None) -> None:
        self.client.offer(_frame(event, data, token, message))

    def error(self, message: str) -> None:
        self.send("error", message=message)

    def subscribe(self, events: Any, tokens: Any) -> bool:
        if events is not None and (not isinstance(events, list) or not all(isinstance(e, str) for e in events)):
            self.error("'events' must be an array of event names")
            return False
        if tokens is not None and (not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens)):
            self.error("'tokens' must be an array of device tokens")
            return False
        # Checked before any of them is looked at: a 64 KiB frame of 4,000 numbers held the loop for 0.27 s.
        if (events is not None and len(events) > MAX_LIST) or (tokens is not None and len(tokens) > MAX_LIST):
            self.error(f"subscribe at most {MAX_LIST} tokens and {MAX_LIST} events at a time")
            return False
        if events is not None:
            unknown = set(events) - CLIENT_EVENTS
            if unknown:
                self.error(f"unknown event(s): {', '.join(sorted(unknown))}")
                return False
        if tokens is not None:
            tokens = [self._token(t) or t for t in tokens]
        self.rt.hub.resubscribe(self.client, events, tokens)
        return True

    def _token(self, raw: Any) -> str | None:
        if not isinstance(raw, str) or not raw.strip():
            return None
        try:
            return normalize(raw, self.rt.settings.default_country_code)
        except InvalidPhone:
            return None

    def ask(self, action: str, payload: dict[str, Any]) -> None:
        """``get_state`` / ``get_qr``: answered from the device here, or — in a cluster, for a device this
        node does not run — by the device's node (:meth:`_ask_owner`), awaited by the reader."""
        token = self._token(payload.get("token"))
        if token is None:
            self.error("'payload.token' must be a device token")
            return
        device = self.rt.devices.get(token)
        if device is None and forwarding.elsewhere(self.rt, token):
            self.pending = self._ask_owner(action, token)
        elif device is None or not self.p.can_see(device.row.owner_id):
            self.no_device(token)
        elif action == "get_state":
            self.send("session_state", device.state(), token)
        else:
            self.send("qrcode", device.qr, token)

    async def _ask_owner(self, action: str, token: str) -> None:
        """The same answer as the device's node gives: the REST read a frame mirrors (``GET
        /devices/{token}`` is ``session_state``'s data, ``GET /devices/{token}/qr`` carries ``qrcode``'s),
        forwarded like any call about the device (gateway.api.forwarding ``get_from_owner``). Reusing them
        keeps one protocol on the bus and one place deciding who may see a device — the owner's gate and
        routes, with this socket's credential — rather than a second, WebSocket-only one to keep in step.
        A device the caller may not see answers as one that does not exist; no live owner, no answer
        in time or the bus down → an error frame with ``data.code`` ``DEVICE_MOVING`` and ``retryAfter``,
        as HTTP's 503."""
        path = f"/devices/{token}" if action == "get_state" else f"/devices/{token}/qr"
        try:
            data = await forwarding.get_from_owner(self.rt, self.ws, self.p, token, path)
        except ApiError as exc:
            if exc.code == "DEVICE_NOT_FOUND":
                self.no_device(token)
                return
            refusal: dict[str, Any] = {"code": exc.code}
            retry = exc.headers.get("Retry-After")
            if retry is not None and retry.isdigit():
                refusal["retryAfter"] = int(retry)
            self.send("error", refusal, token, exc.message)
            return
        if data is None:  # no node has the device: as for any unknown one
            self.no_device(token)
        elif action == "get_state":
            self.send("session_state", data, token)
        else:
            self.send("qrcode", data.get("qr") if isinstance(data, dict) else None, token)

    def no_device(self, token: str) -> None:
        self.error(f"no device for token {token}")

    def handle(self, raw: str) -> None:
        if len(raw) > MAX_FRAME:
            self.error("frame too large")
            return
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.error("frame is not valid JSON")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("action"), str):
            self.error("frame must be an object with an 'action'")
            return
        payload = msg.get("payload") or {}
        if not isinstance(payload, dict):
            self.error("'payload' must be an object")
            return
        action = msg["action"]
        if action == "ping":
            self.send("pong")
        elif action == "whoami":
            self.send("whoami", self.identity())
        elif action in ("get_state", "get_qr"):
            self.ask(action, payload)
        elif action == "list_devices":
            self.pending = self._list_devices()  # reads the store in a cluster: awaited by the reader
        elif action == "subscribe":
            if self.subscribe(payload.get("events"), payload.get("tokens")):
                c = self.client
                self.send(
                    "subscribed",
                    {
                        "events": sorted(c.events) if c.events is not None else None,
                        "tokens": sorted(c.tokens) if c.tokens is not None else None,
                    },
                )
        else:
            self.error(f"unknown action {action!r}")

    async def _list_devices(self) -> None:
        self.send("devices", {"devices": await self.rt.devices.listed(self.p.account_id, self.p.is_admin)})

    def identity(self) -> dict[str, Any]:
        return {
            "clientId": self.client.id,
            "isAdmin": self.p.is_admin,
            "userId": self.p.account_id,
            "username": self.p.username,
        }

    async def writer(self) -> None:
        queue = self.client.queue
        while True:
            await self.ws.send_text(await queue.get())


async def _refuse(ws: WebSocket, response: Response) -> None:
    """Refuse the upgrade with an HTTP answer in the envelope (ASGI's WebSocket denial response);
    a server without that extension gets a plain refusal (HTTP 403)."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(response)
    else:  # pragma: no cover - uvicorn supports the extension
        await ws.close(code=1008)


def _limited(wait: float) -> Response:
    return fail("RATE_LIMITED", "too many requests", 429, {"Retry-After": str(int(wait))})


async def endpoint(ws: WebSocket) -> None:
    rt = runtime(ws)
    principal = await rt.auth.authenticate(ws, allow_query=True)
    if principal is None:
        # A failed authentication counts against the address, as over HTTP; once over, the answer is 429.
        wait = rt.limiter.hit("addr:" + client_address(ws.scope))
        if wait:
            await _refuse(ws, _limited(wait))
        else:
            await ws.close(code=1008)  # before accept: the upgrade is refused (HTTP 403)
        return
    if principal.via == "cookie" and not same_origin(ws.scope, rt.settings.cors_origins):
        await _refuse(ws, cross_site_refusal())  # cross-site WebSocket hijacking: another page, our user's cookie
        return
    wait = rt.limiter.hit(principal.rate_key)
    if wait:
        await _refuse(ws, _limited(wait))  # a valid caller is told it is limited, not that its key is wrong
        return
    session = Session(ws, rt, principal)
    revoked = rt.auth.revocations.watch(principal)
    expired = asyncio.Event()
    expiry = None
    if principal.expires_at is not None:  # a session (or a key minted with it) ends by itself: so does its socket
        left = max(0.0, principal.expires_at - rt.accounts.clock())
        expiry = asyncio.get_running_loop().call_later(left, expired.set)
    try:
        await _serve(ws, rt, session, revoked, expired)
    finally:
        rt.auth.revocations.unwatch(principal, revoked)
        if expiry is not None:
            expiry.cancel()


async def _serve(ws: WebSocket, rt: Runtime, session: Session, revoked: asyncio.Event, expired: asyncio.Event) -> None:
    await ws.accept()
    events, tokens = _split(ws.query_params.get("events")), _split(ws.query_params.get("tokens"))
    session.send("connected", session.identity())
    if events is not None or tokens is not None:
        session.subscribe(events, tokens)
    rt.hub.attach(session.client)
    writer = asyncio.create_task(session.writer(), name=f"ws-writer-{session.client.id}")
    reader = asyncio.create_task(_read(ws, session), name=f"ws-reader-{session.client.id}")
    slow = asyncio.create_task(session.client.slow.wait(), name=f"ws-slow-{session.client.id}")
    gone = asyncio.create_task(revoked.wait(), name=f"ws-revoked-{session.client.id}")
    ended = asyncio.create_task(expired.wait(), name=f"ws-expired-{session.client.id}")
    code, reason = 1000, None
    try:
        await asyncio.wait({writer, reader, slow, gone, ended}, return_when=asyncio.FIRST_COMPLETED)
        if gone.done():
            code, reason = REVOKED, "credential revoked"
            log.info("ws.revoked_client_closed", client=session.client.id)
        elif ended.done():
            code, reason = REVOKED, "session expired"
            log.info("ws.expired_client_closed", client=session.client.id)
        elif slow.done():
            code, reason = 1013, "client too slow"
            log.info("ws.slow_client_closed", client=session.client.id)
        elif session.close_code is not None:
            code, reason = session.close_code, "too many frames"
            log.info("ws.flooding_client_closed", client=session.client.id)
    finally:
        rt.hub.detach(session.client)
        for task in (writer, reader, slow, gone, ended):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # The close frame waits behind whatever the peer has not read yet; this
        # task is the only one that waits for it, so give a slow peer time.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=code, reason=reason), 15)
        log.debug("ws.closed", client=session.client.id, address=client_address(ws.scope))


async def _read(ws: WebSocket, session: Session) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if not session.budget.take():
                if session.budget.refused_in_row >= ABUSE_LIMIT:
                    session.close_code = 1008
                    return
                session.error(f"too many frames: at most {FRAME_RATE:g} a second (bursts of {FRAME_BURST})")
                continue
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                try:
                    text = data.decode()
                except UnicodeDecodeError:
                    session.error("frame is not UTF-8 text")
                    continue
            session.handle(text)
            if session.pending is not None:  # an action that reads the store or asks the device's node
                pending, session.pending = session.pending, None
                await pending


routes = [WebSocketRoute("/ws", endpoint)]

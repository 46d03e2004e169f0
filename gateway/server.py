"""The HTTP server's guard on connections, before any request reaches the app.

uvicorn's httptools protocol (the fast one) has no limit on header size — a
client streaming a 20 MB header made the parser buffer all of it — no timeout
for a connection that never completes a request (uvicorn's keep-alive timer
only runs *between* requests), and ``limit_concurrency`` does not count
WebSocket upgrades and answers in plain text. :func:`guarded_protocol` makes a
subclass of it that adds, per connection:

- a cap on the bytes of one request's head (request line + headers):
  over :attr:`ConnectionLimits.max_header_bytes` → ``431 HEADERS_TOO_LARGE``
  and the connection is closed, before the parser has buffered more than that;
- a deadline for a complete head, from the connection's first byte (or from
  its opening, for a silent one): a connection that sends nothing is closed,
  one that sent part of a head gets ``408 REQUEST_TIMEOUT`` and is closed;
- a bound on open connections (HTTP and WebSocket together): one over
  ``MAX_CONNECTIONS`` gets ``503 TOO_MANY_CONNECTIONS`` at once and is closed;
- the contract's JSON envelope on the parser's own ``400`` (uvicorn's is plain text).

The WebSocket frame size limit is uvicorn's own ``ws_max_size`` (see ``__main__``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from websockets.exceptions import SecurityError

from gateway.api.envelope import fail

MAX_HEADER_BYTES = 16 * 1024
HEADER_TIMEOUT_S = 10.0
LINGER_S = 1.0  # how long a refused connection is drained before it is closed …
LINGER_BYTES = 64 * 1024  # … or how much of it
WS_MAX_FRAME = 64 * 1024  # the application's own frame limit (routes/ws.py checks it too)
JOIN_LIMIT = 64 * 1024  # a first piece of body up to this size goes out in one write with the response head


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_header_bytes: int = MAX_HEADER_BYTES
    header_timeout_s: float = HEADER_TIMEOUT_S
    max_connections: int = 10_000


def refusal(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response with the error envelope that closes the connection."""
    body = fail(code, message, status).body
    head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    return STATUS_LINE[status] + head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above (``limits`` is set by :func:`guarded_protocol`)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the parser is reading a request line and headers
        self._head_bytes = 0
        # The head's deadline (None: not reading a head) and the timer that checks it. The timer is not
        # moved per request (a call_later and a cancel each): when it fires early it waits for the new one.
        self._head_deadline: float | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._linger: asyncio.TimerHandle | None = None
        self._drained = 0

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "TOO_MANY_CONNECTIONS", "the gateway has too many open connections; retry later")
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # draining after a refusal: drop it, but not forever
            self._drained += len(data)
            if self._drained > LINGER_BYTES:
                self.transport.close()
            return
        if not self._in_head:
            super().data_received(data)
            return
        if self._head_deadline is None:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        room = self.limits.max_header_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # More than the head may hold: feed what fits; unless that completed the head, refuse.
        self._head_bytes += room
        super().data_received(data[:room])
        if self._in_head:
            if not self.transport.is_closing():
                self._refuse(431, "HEADERS_TOO_LARGE", f"request headers are over {self.limits.max_header_bytes} bytes")
            return
        rest = data[room:]
        current = self.transport.get_protocol()
        if current is self:
            self.data_received(rest)
        elif isinstance(current, asyncio.Protocol) and not self.transport.is_closing():
            current.data_received(rest)  # upgraded to a WebSocket within this read

    # -- parser callbacks ----------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not before:  # a request's cycle (an upgrade makes none)
            self.cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what follows is the next request's head
        self._head_bytes = 0

    def handle_websocket_upgrade(self) -> None:
        """uvicorn hands the upgrade request to the WebSocket protocol, which parses it again with
        websockets' own limits (8 KiB per header line, 128 headers). When that parse fails, websockets
        queues a refusal that uvicorn never writes: the client hung forever. Answer and close instead."""
        super().handle_websocket_upgrade()
        ws = self.transport.get_protocol()
        conn = getattr(ws, "conn", None)
        failure = getattr(conn, "handshake_exc", None)
        if failure is None or getattr(ws, "handshake_initiated", True):
            return
        if isinstance(failure, SecurityError):  # a line too long, or too many headers
            response = refusal(431, "HEADERS_TOO_LARGE", f"WebSocket upgrade headers too large: {failure}")
        else:
            response = refusal(400, "INVALID_REQUEST", "the WebSocket upgrade request is not valid")
        self.transport.write(response)
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "INVALID_REQUEST", "the request is not valid HTTP/1.1")

    # -- helpers -----------------------------------------------------------------------------------

    def _arm(self) -> None:
        self._head_deadline = deadline = self.loop.time() + self.limits.header_timeout_s
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(deadline, self._head_check)

    def _disarm(self) -> None:
        self._head_deadline = None

    def _head_check(self) -> None:
        self._head_timer = None
        deadline = self._head_deadline
        if deadline is None:
            return  # no head under way: the next one arms a timer again
        if self.loop.time() < deadline:  # a later request's head: its own deadline
            self._head_timer = self.loop.call_at(deadline, self._head_check)
            return
        self._head_timed_out()

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self._head_bytes:
            self._refuse(408, "REQUEST_TIMEOUT", "the request headers did not arrive in time")
        else:
            self._refused = True
            self.transport.close()

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer and end the connection. Closing at once with the client's bytes still unread would
        make the kernel send a reset, which can discard the answer before the client reads it; so
        half-close, drop what else arrives, and close when the client does (or after LINGER_S or
        LINGER_BYTES)."""
        self._refused = True
        self._disarm()
        self.transport.write(refusal(status, code, message))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = self.loop.call_later(LINGER_S, self.transport.close)


class HeadWithBody:
    """The transport as a response sees it: the response head is held back until the first piece of the
    body (or the end of the loop's turn, whichever comes first) and both go out in one write — one
    system call per small response, not two (uvicorn writes the head as soon as it is sent)."""

    __slots__ = ("_held", "_loop", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if len(data) > JOIN_LIMIT:  # a big body: not copied to save one system call
                self._transport.write(held)
            else:
                data = held + data
        elif not self._started and not data.startswith(b"HTTP/1.1 100 "):
            self._started = True
            self._held = data
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to hand uvicorn (``Config(http=...)``), with these limits."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})

"""Calls forwarded to the node where a device lives (CONTRACT §14): the bus half.

The owner of a device serves ``wa.<cluster>.dev.<token>`` in the queue group ``owner`` while it owns it (this is
an ownership listener: :meth:`Forwarder.on_acquired` / :meth:`Forwarder.on_released`); each request is
run by the runner bound at start (:mod:`gateway.api.forwarding` runs it through the node's whole app)
in a task of its own. A node holding a call for a device it does not have sends it with
:meth:`Forwarder.call`: one NATS message there (the call's method, path, query, headers and body)
and one back (status, headers, body), each bounded by the server's ``max_payload``.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog

from gateway.cluster.bus import Bus, BusUnavailable, Handle, Headers

log = structlog.get_logger("gateway.cluster.forward")

PREFIX = "dev."  # after the bus's prefix
QUEUE = "owner"
FORWARDED = "wa.forwarded"  # in the ASGI scope of a call run for another node (never from a client)
NO_RESPONDERS_RETRY_S = (0.025, 0.075)
HEADROOM = 16 * 1024  # of max_payload, for a request's or an answer's metadata

Answer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body
Runner = Callable[[dict[str, Any], bytes], Awaitable[Answer]]


class Forwarder:
    def __init__(self, bus: Bus, timeout_s: float) -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self._served: dict[str, Handle] = {}
        self._runner: Runner | None = None
        self.forwarded = 0
        self.served = 0

    def bind(self, runner: Runner) -> None:
        self._runner = runner

    @property
    def max_body(self) -> int:
        """The largest request body or answer body one message carries."""
        return self.bus.max_payload - HEADROOM

    # -- the owner's side (an OwnershipListener) -----------------------------------------------

    async def on_acquired(self, token: str) -> None:
        if token not in self._served:
            self._served[token] = await self.bus.serve(self.bus.prefix + PREFIX + token, self._serve, queue=QUEUE)

    async def on_released(self, token: str) -> None:
        handle = self._served.pop(token, None)
        if handle is not None:
            await self.bus.unsubscribe(handle)

    def serving(self, token: str) -> bool:
        return token in self._served

    async def _serve(self, data: bytes, headers: Headers | None) -> tuple[bytes, Headers | None]:
        meta, body = unpack(data)
        runner = self._runner
        if runner is None:
            return b"", {"Wa-Error": "not ready"}
        status, out_headers, out_body = await runner(meta, body)
        self.served += 1
        return pack({"status": status, "headers": out_headers}, out_body), None

    # -- the side that got the call ---------------------------------------------------------------

    async def call(
        self, token: str, meta: dict[str, Any], body: bytes, worth_retrying: Callable[[], Awaitable[bool]]
    ) -> Answer:
        """The owner's answer; :class:`~gateway.cluster.bus.BusUnavailable` if there is none.

        "No responders" is asked again twice within ~0.1 s when ``worth_retrying()`` says so (the device
        exists): a new owner's subscription takes a moment to be known everywhere (across the servers of a
        NATS cluster, above all) — a takeover that has just happened is not worth a 503."""
        data = pack(meta, body)
        subject = self.bus.prefix + PREFIX + token
        pauses = list(NO_RESPONDERS_RETRY_S)
        while True:
            try:
                msg = await self.bus.request(subject, data, timeout=self.timeout_s)
                break
            except BusUnavailable as exc:
                if exc.why != "no_responders" or not pauses or not await worth_retrying():
                    raise
                await asyncio.sleep(pauses.pop(0))
        if msg.headers and "Wa-Error" in msg.headers:
            raise BusUnavailable("refused")  # the owner is starting, or its handler failed (logged there)
        out_meta, out = unpack(msg.data)
        self.forwarded += 1
        return out_meta["status"], [(k, v) for k, v in out_meta["headers"]], out


def pack(meta: dict[str, Any], body: bytes) -> bytes:
    head = orjson.dumps(meta)
    return struct.pack(">I", len(head)) + head + body


def unpack(data: bytes) -> tuple[dict[str, Any], bytes]:
    (size,) = struct.unpack_from(">I", data)
    meta: dict[str, Any] = orjson.loads(data[4 : 4 + size])
    return meta, data[4 + size :]

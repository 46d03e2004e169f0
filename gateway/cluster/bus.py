"""The bus between the nodes of a cluster (CONTRACT §14): one NATS connection per node.

Start-up does not wait for NATS: the connection is made by a task that retries forever (nats-py's
own loop, ``RECONNECT_WAIT_S`` between attempts), and so is every reconnection after it; until it is
up, :attr:`Bus.connected` is false (``/health/ready`` says so), publishes are dropped and counted, and
requests fail at once with :class:`BusUnavailable` — a caller answers ``503 DEVICE_MOVING`` rather
than wait. Subscriptions made before the connection are applied when it comes; nats-py restores them
after every reconnection.

nats-py runs one subscription's callbacks one after another. :meth:`Bus.subscribe` keeps that (its
handler is synchronous and must be quick: the event relay relies on it for per-device order);
:meth:`Bus.serve` answers requests, each in a task of its own, so one slow call never holds up the
next.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

log = structlog.get_logger("gateway.bus")

RECONNECT_WAIT_S = 1  # between connection attempts, forever
CONNECT_TIMEOUT_S = 2
DRAIN_TIMEOUT_S = 5
DEFAULT_MAX_PAYLOAD = 1024 * 1024  # nats-server's default, until the server says otherwise

Headers = dict[str, str]
Inline = Callable[[bytes, Headers | None], None]
Answer = tuple[bytes, Headers | None]
Handler = Callable[[bytes, Headers | None], Awaitable[Answer]]


# nats-py is loaded when a bus is made (BUS_URL set), never by a single node: ~14 MiB of RSS.
# The names below are bound by :func:`_load_nats`; every use is a method of a constructed Bus.
nats: Any = None
NatsError: Any = None
NoRespondersError: Any = None
NatsTimeout: Any = None


def _load_nats() -> None:
    global nats, NatsError, NoRespondersError, NatsTimeout
    if nats is None:
        import nats as client
        from nats import errors

        nats, NatsError, NoRespondersError, NatsTimeout = (
            client,
            errors.Error,
            errors.NoRespondersError,
            errors.TimeoutError,
        )


class BusUnavailable(Exception):
    """A request got no answer: nobody serves the subject, it timed out, or the bus is down."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why  # no_responders | timeout | disconnected


@dataclass(eq=False)
class Handle:
    """One subscription of ours; :meth:`Bus.unsubscribe` ends it (before or after the connection)."""

    subject: str
    queue: str
    callback: Callable[[Msg], Awaitable[None]]
    sub: Subscription | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class Bus:
    def __init__(self, url: str, node_id: str, namespace: str = "") -> None:
        _load_nats()
        self.url = url
        self.node_id = node_id
        # Every subject of this cluster starts with it: two gateways sharing one NATS server never hear
        # each other (app.py derives it from the database's identity: one database, one cluster).
        self.prefix = f"wa.{namespace}." if namespace else "wa."
        # Who published a message, for skipping one's own: unique even if two nodes were given one NODE_ID.
        self.origin = f"{node_id}/{secrets.token_hex(4)}"
        self._nc: Client | None = None
        self._connector: asyncio.Task[None] | None = None
        self._handles: set[Handle] = set()
        self._ready = asyncio.Event()
        self.dropped = 0  # publishes made while disconnected
        self.requests_failed = 0

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect(), name="bus-connect")

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.connected

    async def _connect(self) -> None:
        servers = [s.strip() for s in self.url.split(",")]
        nc = await nats.connect(
            servers,
            name=f"wa-gateway {self.node_id}",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT_S,
            connect_timeout=CONNECT_TIMEOUT_S,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        self._nc = nc
        for handle in list(self._handles):
            await self._apply(handle)
        self._ready.set()
        log.info("bus.connected", node=self.node_id)

    async def stop(self) -> None:
        """Drain: what was published leaves, what is being answered finishes (bounded), then close."""
        if self._connector is not None and not self._connector.done():
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connector
        nc = self._nc
        self._nc = None
        if nc is None:
            return
        tasks = [t for h in self._handles for t in h.tasks]
        if nc.is_connected:
            try:
                await asyncio.wait_for(nc.drain(), DRAIN_TIMEOUT_S)
            except (TimeoutError, NatsError, OSError):
                log.warning("bus.drain_incomplete", node=self.node_id)
        if tasks:
            await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await nc.close()

    @property
    def connected(self) -> bool:
        nc = self._nc
        return nc is not None and nc.is_connected

    @property
    def max_payload(self) -> int:
        """The largest message the server takes (its ``max_payload``), headers included."""
        nc = self._nc
        return nc.max_payload if nc is not None and nc.max_payload else DEFAULT_MAX_PAYLOAD

    async def _on_error(self, exc: Exception) -> None:
        log.warning("bus.error", node=self.node_id, error=str(exc) or type(exc).__name__)

    async def _on_disconnected(self) -> None:
        log.warning("bus.disconnected", node=self.node_id)

    async def _on_reconnected(self) -> None:
        log.info("bus.reconnected", node=self.node_id)

    # -- publish / subscribe ------------------------------------------------------------------

    async def publish(self, subject: str, data: bytes, headers: Headers | None = None) -> bool:
        """Send and forget; False (and counted) when the bus is down: nothing is buffered for later."""
        nc = self._nc
        if nc is None or not nc.is_connected:
            self.dropped += 1
            return False
        try:
            await nc.publish(subject, data, headers=headers)
        except (NatsError, OSError):
            self.dropped += 1
            return False
        return True

    async def subscribe(self, subject: str, handler: Inline, queue: str = "") -> Handle:
        """``handler(data, headers)`` for each message, one at a time in arrival order, on the loop: it
        must not block (hand anything slow to a task)."""

        async def callback(msg: Msg) -> None:
            try:
                handler(msg.data, msg.headers)
            except Exception:
                log.exception("bus.handler_failed", subject=msg.subject)

        return await self._add(Handle(subject, queue, callback))

    async def serve(self, subject: str, handler: Handler, queue: str = "") -> Handle:
        """Answer requests on ``subject``: each runs ``handler(data, headers)`` in its own task and
        its ``(data, headers)`` is the reply. In a ``queue`` group, one member answers each request."""
        handle = Handle(subject, queue, _noop)

        async def answer(msg: Msg) -> None:
            try:
                data, headers = await handler(msg.data, msg.headers)
            except Exception:
                log.exception("bus.serve_failed", subject=msg.subject)
                data, headers = b"", {"Wa-Error": "handler failed"}
            nc = self._nc
            if msg.reply and nc is not None:
                with contextlib.suppress(NatsError, OSError):
                    await nc.publish(msg.reply, data, headers=headers)

        async def callback(msg: Msg) -> None:
            task = asyncio.create_task(answer(msg))
            handle.tasks.add(task)
            task.add_done_callback(handle.tasks.discard)

        handle.callback = callback
        return await self._add(handle)

    async def unsubscribe(self, handle: Handle) -> None:
        self._handles.discard(handle)
        sub, handle.sub = handle.sub, None
        if sub is not None:
            with contextlib.suppress(NatsError, OSError):
                await sub.unsubscribe()

    async def _add(self, handle: Handle) -> Handle:
        self._handles.add(handle)
        if self._nc is not None:
            await self._apply(handle)
        return handle

    async def _apply(self, handle: Handle) -> None:
        nc = self._nc
        if nc is None or handle.sub is not None or handle not in self._handles:
            return
        handle.sub = await nc.subscribe(handle.subject, queue=handle.queue, cb=handle.callback)

    # -- request / reply ----------------------------------------------------------------------------

    async def request(self, subject: str, data: bytes, timeout: float, headers: Headers | None = None) -> Msg:
        """The one answer to a request; :class:`BusUnavailable` when nobody serves ``subject`` (~1 ms),
        nobody answered within ``timeout``, or the bus is down (at once)."""
        nc = self._nc
        if nc is None or not nc.is_connected:
            self.requests_failed += 1
            raise BusUnavailable("disconnected")
        try:
            return await nc.request(subject, data, timeout=timeout, headers=headers)
        except NoRespondersError:
            self.requests_failed += 1
            raise BusUnavailable("no_responders") from None
        except NatsTimeout:
            self.requests_failed += 1
            raise BusUnavailable("timeout") from None
        except (NatsError, OSError) as exc:
            self.requests_failed += 1
            raise BusUnavailable("disconnected") from exc


async def _noop(msg: Any) -> None:
    return None

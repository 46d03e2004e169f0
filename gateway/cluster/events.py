"""WebSocket events across nodes: every node's Hub events go out on the bus, other nodes' come in.

A device lives on one node, so its events are published by that node only: to ``wa.<cluster>.ev.<token>``
(``….ev._`` for events about no device), in the order its Hub saw them — one task publishes them one
after another over the node's one connection, NATS keeps a publisher's order on a subject, and
:meth:`gateway.cluster.bus.Bus.subscribe` hands them over one at a time. Every node subscribes to
``wa.<cluster>.ev.>`` and gives what other nodes published to its own Hub's :meth:`~gateway.events.Hub.deliver`,
which filters per client (account, subscription) exactly as for local events; its own events
come back too and are skipped (they were delivered locally when published: no duplicates).

Webhooks never travel here: the outbox in the store delivers those. While the bus is down events are
not queued for later — a WebSocket listener on another node misses them, as a listener that was not
connected would (the console re-reads state on ``session_update``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import orjson
import structlog

from gateway.cluster.bus import Bus, Handle, Headers
from gateway.events import Event, Hub

log = structlog.get_logger("gateway.cluster.events")

PREFIX = "ev."  # after the bus's prefix
MAX_BACKLOG = 100_000  # events waiting for the publishing task; beyond it the oldest are dropped


def subject(prefix: str, token: str | None) -> str:
    return prefix + PREFIX + (token if token else "_")


class EventRelay:
    def __init__(self, bus: Bus, hub: Hub) -> None:
        self.bus = bus
        self.hub = hub
        self._backlog: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._handle: Handle | None = None
        self.sent = 0
        self.received = 0
        self.dropped = 0

    async def start(self) -> None:
        self._handle = await self.bus.subscribe(self.bus.prefix + PREFIX + ">", self._incoming)
        self._task = asyncio.create_task(self._publisher(), name="event-relay")
        self.hub.relay = self._outgoing

    async def stop(self) -> None:
        self.hub.relay = None
        if self._handle is not None:
            await self.bus.unsubscribe(self._handle)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _outgoing(self, ev: Event) -> None:
        if len(self._backlog) >= MAX_BACKLOG:
            self._backlog.popleft()
            self.dropped += 1
        self._backlog.append(ev)
        self._wake.set()

    async def _publisher(self) -> None:
        node = self.bus.origin
        prefix = self.bus.prefix
        backlog = self._backlog
        while True:
            await self._wake.wait()
            self._wake.clear()
            while backlog:
                ev = backlog.popleft()
                body = orjson.dumps((node, ev.event, ev.token, ev.data, ev.message, ev.owner_id, ev.timestamp))
                if await self.bus.publish(subject(prefix, ev.token), body):
                    self.sent += 1
                else:
                    self.dropped += 1

    def _incoming(self, data: bytes, headers: Headers | None) -> None:
        try:
            node, event, token, payload, message, owner_id, timestamp = orjson.loads(data)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            log.warning("events.bad_frame", size=len(data))
            return
        if node == self.bus.origin:
            return  # delivered here when it was published
        self.received += 1
        self.hub.deliver(Event(event, token, payload, message, owner_id, timestamp))

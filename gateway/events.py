"""Events as clients see them, and the Hub that fans them out to WebSockets.

Each WebSocket client gets a bounded queue; publishing never waits on a
client. A client whose queue is full is a slow reader and is closed with 1013
instead of slowing the others. Clients are indexed by the token they
subscribe to, so an event costs work only for the clients that want it.

The Hub is the one place events cross to listeners. In a cluster its ``relay``
hands every event to the bus and other nodes' events arrive through
``deliver`` (gateway.cluster.events), filtered for each client exactly as local ones.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from gateway.timestamps import now_iso

T = TypeVar("T")

CLIENT_EVENTS = frozenset(
    {
        "qrcode",
        "pairing-code",
        "connection-success",
        "connection-error",
        "message",
        "message.sent",
        "message.receipt",
        "message.status",
        "message.edited",
        "message.revoked",
        "message.reaction",
        "contacts.new",
        "contacts.sync",
        "session_update",
        "campaign",
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    """One frame for WebSocket clients, about one device (``token``)."""

    event: str
    token: str | None
    data: Any = None
    message: str | None = None
    owner_id: int | None = None
    timestamp: str = field(default_factory=now_iso)

    def frame(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event}
        if self.token is not None:
            out["token"] = self.token
        if self.data is not None:
            out["data"] = self.data
        if self.message is not None:
            out["message"] = self.message
        out["timestamp"] = self.timestamp
        return out


_ids = itertools.count(1)


class Client:
    """One WebSocket listener: what it may see, what it wants, its queue."""

    def __init__(self, owner_id: int | None, is_admin: bool, queue_size: int = 1024) -> None:
        self.id = f"c{next(_ids)}"
        self.owner_id = owner_id
        self.is_admin = is_admin
        self.events: frozenset[str] | None = None
        self.tokens: frozenset[str] | None = None
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.slow = asyncio.Event()  # set once the queue overflowed: the socket is closed with 1013

    def wants(self, ev: Event) -> bool:
        if self.events is not None and ev.event not in self.events:
            return False
        if self.tokens is not None and ev.token not in self.tokens:
            return False
        return self.is_admin or ev.owner_id == self.owner_id

    def offer(self, payload: str) -> None:
        if self.slow.is_set():
            return
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.slow.set()


class Hub:
    def __init__(self) -> None:
        self._by_token: dict[str, set[Client]] = {}
        self._wildcard: set[Client] = set()
        self.published = 0
        # In a cluster, every event published here is also handed to the bus (gateway.cluster.events);
        # what other nodes publish comes back through :meth:`deliver`, which never relays.
        self.relay: Callable[[Event], None] | None = None

    @property
    def client_count(self) -> int:
        return len(self._wildcard) + len({c for s in self._by_token.values() for c in s})

    def attach(self, client: Client) -> None:
        self._index(client)

    def detach(self, client: Client) -> None:
        self._unindex(client)

    def resubscribe(self, client: Client, events: Iterable[str] | None, tokens: Iterable[str] | None) -> None:
        self._unindex(client)
        client.events = frozenset(events) if events is not None else None
        client.tokens = frozenset(tokens) if tokens is not None else None
        self._index(client)

    def publish(
        self, event: str, token: str | None, data: Any = None, message: str | None = None, owner_id: int | None = None
    ) -> None:
        """Hand one event to every client that wants it (built and serialized once, and only
        when some client listens to ``token`` or to every device — or the bus relays it)."""
        self.published += 1
        relay = self.relay
        if relay is None:
            targets = self._targets(token)
            if targets:
                self._offer(targets, Event(event, token, data, message, owner_id))
            return
        ev = Event(event, token, data, message, owner_id)
        self.deliver(ev)
        relay(ev)

    def publish_lazy(self, event: str, token: str, build: Callable[[], Any], owner_id: int | None = None) -> None:
        """:meth:`publish` for data built only when something will receive it: a message's status
        changes two or three times per send, and most of the time no one listens."""
        if self.relay is None and not self._wildcard and token not in self._by_token:
            self.published += 1
            return
        self.publish(event, token, build(), None, owner_id)

    def publish_each(
        self, event: str, token: str, items: Sequence[T], build: Callable[[T], Any], owner_id: int | None = None
    ) -> None:
        """:meth:`publish_lazy` for several events at once: ``build(item)`` for each, when someone listens."""
        if self.relay is None and not self._wildcard and token not in self._by_token:
            self.published += len(items)
            return
        for item in items:
            self.publish(event, token, build(item), None, owner_id)

    def deliver(self, ev: Event) -> None:
        """One event to this node's clients that want it, and to no other node (the bus brings
        other nodes' events here through this)."""
        targets = self._targets(ev.token)
        if targets:
            self._offer(targets, ev)

    def _targets(self, token: str | None) -> set[Client]:
        targets = self._wildcard
        if token is not None and token in self._by_token:
            targets = targets | self._by_token[token]
        return targets

    @staticmethod
    def _offer(targets: set[Client], ev: Event) -> None:
        payload: str | None = None
        for client in targets:
            if client.wants(ev):
                if payload is None:
                    payload = orjson.dumps(ev.frame()).decode()
                client.offer(payload)

    def _index(self, client: Client) -> None:
        if client.tokens is None:
            self._wildcard.add(client)
        else:
            for token in client.tokens:
                self._by_token.setdefault(token, set()).add(client)

    def _unindex(self, client: Client) -> None:
        self._wildcard.discard(client)
        for token in client.tokens or ():
            bucket = self._by_token.get(token)
            if bucket is not None:
                bucket.discard(client)
                if not bucket:
                    del self._by_token[token]

"""The hot path's units of work: everything one device event changes, in one transaction.

A device's pump, its state machine, the send path and the message service
call these named methods; each is one job of the group commit
(:meth:`gateway.store.db.Db.run`), so the event's state change and the
webhook outbox rows that report it commit together or not at all, on either
engine. Outbox rows that depend on what the job found (the contacts that were
new, the statuses that moved) come from a ``deliveries`` callback run inside
the job: it must only compute (it runs on the writer's thread), never await.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from gateway.store.conn import Conn
from gateway.store.contacts import ContactRow, upsert_contacts_sync
from gateway.store.db import Db
from gateway.store.devices import DeviceRow, device_values, save_device_sync, save_stats_sync, stats_values
from gateway.store.leases import Fences, check_fence_sync
from gateway.store.messages import (
    PRUNE_BATCH,
    NewMessage,
    StatusChange,
    apply_receipt_batch_sync,
    edit_sync,
    mark_read_sync,
    media_sync,
    prune_chats_sync,
    prune_sync,
    react_sync,
    record_many_sync,
    record_sent_sync,
    record_sync,
    revoke_sync,
)
from gateway.store.outbox import NewDelivery, enqueue_sync

log = structlog.get_logger("gateway.store")
Guard = Callable[[Conn], bool] | None  # None: single node, nothing to check
ContactDeliveries = Callable[[list[ContactRow]], list[NewDelivery]]
D = TypeVar("D")


def _enqueue(conn: Conn, rows: Sequence[NewDelivery]) -> None:
    if rows:
        enqueue_sync(conn, rows)


def _allowed(guard: Guard, conn: Conn) -> bool:
    return guard is None or guard(conn)


@dataclass(frozen=True, slots=True)
class _Fence:
    """A device's unit of work may write only while this node holds its lease under ``fence``. Equal for
    the same device and fence, so a job of many items checks each device once (:func:`_message_events`)."""

    node: str
    token: str
    fence: int | None

    def __call__(self, conn: Conn) -> bool:
        return _fence_holds(conn, self.node, self.token, self.fence)


def _fence_holds(conn: Conn, node: str, token: str, fence: int | None) -> bool:
    if check_fence_sync(conn, node, token, fence):
        return True
    # A node that lost the device (frozen past its lease, cut off from the database) writes nothing more
    # for it: its event is dropped here, inside the transaction, and the new owner's state stands.
    log.warning("store.stale_write_refused", token=token, node=node, fence=fence)
    return False


Sent = tuple[NewMessage, Guard, list[NewDelivery], tuple[str, str, str] | None]  # a sent message, queued


@dataclass(slots=True)
class _Receipt:
    """A receipt, queued (:meth:`EventQueries.submit_receipt`)."""

    token: str
    ids: Sequence[str]
    status: str
    at: float
    rows: list[NewDelivery]
    describe: Callable[[StatusChange], tuple[Any, list[NewDelivery]]]
    recording: bool
    also: Sequence[Callable[[Conn], object]]
    guard: Guard


def _message_events(conn: Conn, items: list[Sent | _Receipt]) -> list[Any]:
    """The job of :meth:`EventQueries.submit_sent` and :meth:`~EventQueries.submit_receipt`: the sends and
    receipts queued one after another, as if each had been applied in turn, in a few statements for all.

    Sends queued together are stored together (:func:`record_sent_sync`), then receipts together
    (:func:`apply_receipt_batch_sync`), each receipt blind to a message whose send was queued after it.
    Outbox rows are stored last, in queue order. An item whose device's lease is lost does nothing.
    Per item: a send, whether it was new; a receipt, (what ``describe`` made of each change, the
    results of its ``also``)."""
    out: list[Any] = [False] * len(items)
    rows: dict[int, list[NewDelivery]] = {}  # each item's outbox rows, by its place: only items that have any
    verdicts: dict[Callable[[Conn], bool], bool] = {}

    def allowed(guard: Callable[[Conn], bool]) -> bool:  # each device's lease checked once for the job
        verdict = verdicts.get(guard)
        if verdict is None:
            verdict = verdicts[guard] = guard(conn)
        return verdict

    # A guard of None (a single node) lets an item through without a call: this runs for every item.
    sends = [
        (i, item)
        for i, item in enumerate(items)
        if not isinstance(item, _Receipt) and (item[1] is None or allowed(item[1]))
    ]
    stored = record_sent_sync(
        conn,
        [(item[0], _then(conn, item, rows.setdefault(i, [])) if item[2] or item[3] else None) for i, item in sends],
    )
    queued_at: dict[tuple[str, str], int] = {}  # the messages this job stored: where their send was queued
    for (i, item), new in zip(sends, stored, strict=True):
        out[i] = new
        if new:
            queued_at[(item[0].token, item[0].id)] = i
    receipts = [(i, item) for i, item in enumerate(items) if isinstance(item, _Receipt)]
    for i, _ in receipts:
        out[i] = ([], [])
    receipts = [(i, r) for i, r in receipts if r.guard is None or allowed(r.guard)]
    recorded = [(i, r) for i, r in receipts if r.recording]
    positions = [i for i, _ in recorded]
    changes = apply_receipt_batch_sync(
        conn, [(r.token, r.ids, r.status, r.at) for _, r in recorded], (queued_at, positions)
    )
    changed = {i: c for i, c in zip(positions, changes, strict=True)}
    for i, r in receipts:
        told: list[Any] = []
        mine = list(r.rows)
        for change in changed.get(i, ()):
            data, more = r.describe(change)
            told.append(data)
            mine += more
        if mine:
            rows[i] = mine
        out[i] = (told, [fn(conn) for fn in r.also])
    _enqueue(conn, [row for i in sorted(rows) for row in rows[i]])  # in queue order
    return out


def _then(conn: Conn, item: Sent, rows: list[NewDelivery]) -> Callable[[int], None]:
    """What a new sent message brings into its transaction: its reaction shown, its outbox rows (into
    ``rows``, stored with the others of the job). Made only for a message that has either."""
    message, _guard, deliveries, react = item

    def then(_seq: int) -> None:
        if react is not None:
            react_sync(conn, message.token, react[0], message.sender, react[1], True, react[2])
        rows.extend(deliveries)

    return then


class EventQueries:
    """In cluster mode (``fences`` set) every job for a device first checks, in its own transaction, that
    this node still holds the device's lease under the fencing token it had when the job was made."""

    db: Db
    fences: Fences | None

    def _guard(self, token: str) -> Guard:
        fences = self.fences
        if fences is None:
            return None
        return _Fence(fences.node, token, fences.held.get(token))

    # -- a device's own row -------------------------------------------------------------------

    async def save_device(self, d: DeviceRow, deliveries: Sequence[NewDelivery] = ()) -> None:
        """Insert or replace the whole row (the in-memory Device is the source of truth), with the
        outbox rows of the transition it records."""
        values, rows = device_values(d), list(deliveries)  # taken now: the row may change before the job runs
        guard = self._guard(d.token)

        def job(conn: Conn) -> None:
            if not _allowed(guard, conn):
                return
            save_device_sync(conn, values)
            _enqueue(conn, rows)

        await self.db.run(job)

    async def save_stats(self, devices: Iterable[DeviceRow]) -> None:
        """The message counters (and ``last_update``) of several devices, in one transaction."""
        values = [(stats_values(d), self._guard(d.token)) for d in devices]

        def job(conn: Conn) -> None:
            for v, guard in values:
                if _allowed(guard, conn):
                    save_stats_sync(conn, v)

        if values:
            await self.db.run(job)

    # -- events of a device -------------------------------------------------------------------

    async def record_incoming(
        self,
        device: DeviceRow,
        senders: Sequence[tuple[str, str | None]],
        seen: str,
        message: NewMessage | None,
        deliveries: ContactDeliveries,
    ) -> list[ContactRow]:
        """A received message: the device's counters, its sender as a contact, the message itself
        (None: not stored) and ``deliveries(new contacts)``; returns the contacts that were new."""
        stats, token, owner = stats_values(device), device.token, device.owner_id
        guard = self._guard(token)

        def job(conn: Conn) -> list[ContactRow]:
            if not _allowed(guard, conn):
                return []
            save_stats_sync(conn, stats)
            new = upsert_contacts_sync(conn, token, owner, senders, "message", seen)
            if message is not None:
                record_sync(conn, message)
            _enqueue(conn, deliveries(new))
            return new

        return await self.db.run(job)

    async def record_history(
        self,
        token: str,
        owner_id: int | None,
        contacts: Sequence[tuple[str, str | None]],
        seen: str,
        deliveries: ContactDeliveries,
    ) -> list[ContactRow]:
        """Contacts from a history sync; returns the new ones (``deliveries(new)`` stored with them)."""
        guard = self._guard(token)

        def job(conn: Conn) -> list[ContactRow]:
            if not _allowed(guard, conn):
                return []
            new = upsert_contacts_sync(conn, token, owner_id, contacts, "history", seen)
            if new:
                _enqueue(conn, deliveries(new))
            return new

        return await self.db.run(job)

    def submit_receipt(
        self,
        token: str,
        ids: Sequence[str],
        status: str,
        at: float,
        deliveries: Sequence[NewDelivery],
        describe: Callable[[StatusChange], tuple[D, list[NewDelivery]]],
        recording: bool = True,
        also: Sequence[Callable[[Conn], object]] = (),
    ) -> tuple[asyncio.Future[list[Any]], int]:
        """A receipt, queued for the next group commit without waiting: the statuses it moves forward
        and the receipt's own outbox rows. ``describe`` turns each change into what the caller tells of
        it and the outbox rows stored with it (on the writer's thread, off the event loop). Like
        :meth:`submit_sent`: the future settles on commit with a result per item of the job; this one's,
        at the index returned, is (what it made of each change, in order; the results of ``also``, more
        work of the same transaction: a campaign's recipients). ``recording`` false: the message store
        keeps nothing (MESSAGE_RETENTION_DAYS=0). Receipts come two per send: queued unawaited, with the
        sends around them, a device's receipts share commits — and statements — instead of taking one each."""
        item = _Receipt(token, ids, status, at, list(deliveries), describe, recording, also, self._guard(token))
        return self.db.submit_item(_message_events, item)

    async def record_message(self, message: NewMessage, deliveries: Sequence[NewDelivery] = ()) -> int | None:
        """Store a message (its ``seq``; None when it was stored already) with outbox rows."""
        rows = list(deliveries)
        guard = self._guard(message.token)

        def job(conn: Conn) -> int | None:
            if not _allowed(guard, conn):
                return None
            seq = record_sync(conn, message)
            _enqueue(conn, rows)
            return seq

        return await self.db.run(job)

    def submit_sent(
        self,
        message: NewMessage,
        deliveries: Sequence[NewDelivery] = (),
        react: tuple[str, str, str] | None = None,
    ) -> tuple[asyncio.Future[list[bool]], int]:
        """Queue a message this gateway sent for the next group commit without waiting: sends and
        receipts queued one after another share one job (:meth:`Db.submit_item`, :func:`_message_events`),
        their chats moved once each. The future settles on commit with a result per item of the job;
        this one's, at the index returned, is whether the message was new (its outbox rows are stored
        only then). ``react`` (message id, emoji, at): the message is this device's reaction, also shown
        on the message it reacts to."""
        return self.db.submit_item(_message_events, (message, self._guard(message.token), list(deliveries), react))

    async def edit_message(
        self, token: str, msg_id: str, text: str | None, at: float, deliveries: Sequence[NewDelivery] = ()
    ) -> bool:
        rows = list(deliveries)
        guard = self._guard(token)

        def job(conn: Conn) -> bool:
            if not _allowed(guard, conn):
                return False
            found = edit_sync(conn, token, msg_id, text, at)
            _enqueue(conn, rows)
            return found

        return await self.db.run(job)

    async def revoke_message(self, token: str, msg_id: str, at: float, deliveries: Sequence[NewDelivery] = ()) -> bool:
        rows = list(deliveries)
        guard = self._guard(token)

        def job(conn: Conn) -> bool:
            if not _allowed(guard, conn):
                return False
            found = revoke_sync(conn, token, msg_id, at)
            _enqueue(conn, rows)
            return found

        return await self.db.run(job)

    async def react_message(
        self,
        token: str,
        msg_id: str,
        sender: str | None,
        emoji: str,
        from_me: bool,
        at: str,
        deliveries: Sequence[NewDelivery] = (),
    ) -> bool:
        """A reaction on the stored message it reacts to (one per person; ``""`` removes theirs)."""
        rows = list(deliveries)
        guard = self._guard(token)

        def job(conn: Conn) -> bool:
            if not _allowed(guard, conn):
                return False
            found = react_sync(conn, token, msg_id, sender, emoji, from_me, at)
            _enqueue(conn, rows)
            return found

        return await self.db.run(job)

    async def set_message_media(self, token: str, msg_id: str, media: dict[str, Any]) -> bool:
        """A stored message's media after a new download."""
        guard = self._guard(token)
        return await self.db.run(lambda conn: _allowed(guard, conn) and media_sync(conn, token, msg_id, media))

    async def mark_chat_read(self, token: str, chat: str, upto_seq: int, at: float) -> list[str]:
        """Incoming messages of ``chat`` up to ``upto_seq`` become read; the ids that did."""
        guard = self._guard(token)
        return await self.db.run(
            lambda conn: mark_read_sync(conn, token, chat, upto_seq, at) if _allowed(guard, conn) else []
        )

    # -- bulk ---------------------------------------------------------------------------------

    async def record_messages(self, messages: Sequence[NewMessage]) -> int:
        """Store a batch in one job (bulk loads, benchmarks); how many were new."""
        return await self.db.run(lambda conn: record_many_sync(conn, messages))

    async def prune_messages(self, before: float, batch: int = PRUNE_BATCH) -> tuple[int, bool]:
        """Delete up to ``batch`` of the oldest messages stored before ``before``: (deleted, more)."""
        return await self.db.run(lambda conn: prune_sync(conn, before, batch))

    async def prune_chats(self, before: float) -> int:
        return await self.db.run(lambda conn: prune_chats_sync(conn, before))

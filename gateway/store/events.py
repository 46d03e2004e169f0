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
import functools
from collections.abc import Callable, Iterable, Sequence
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
    apply_receipt_sync,
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


def _fence_holds(conn: Conn, node: str, token: str, fence: int | None) -> bool:
    if check_fence_sync(conn, node, token, fence):
        return True
    # A node that lost the device (frozen past its lease, cut off from the database) writes nothing more
    # for it: its event is dropped here, inside the transaction, and the new owner's state stands.
    log.warning("store.stale_write_refused", token=token, node=node, fence=fence)
    return False


Sent = tuple[NewMessage, Guard, list[NewDelivery], tuple[str, str, str] | None]  # a sent message, queued


def _record_sent(conn: Conn, items: list[Sent]) -> list[bool]:
    """The job of :meth:`EventQueries.submit_sent`: each message stored with its history, its outbox
    rows and its reaction (unless its device's lease is lost), in order, through :func:`record_sent_sync`."""
    allowed = [i for i, (_m, guard, _rows, _react) in enumerate(items) if _allowed(guard, conn)]
    stored = record_sent_sync(conn, [(items[i][0], _then(conn, items[i])) for i in allowed])
    out = [False] * len(items)
    for i, new in zip(allowed, stored, strict=True):
        out[i] = new
    return out


def _then(conn: Conn, item: Sent) -> Callable[[int], None] | None:
    """What a new sent message brings into its transaction: its reaction shown, its outbox rows."""
    message, _guard, rows, react = item
    if not rows and react is None:
        return None

    def then(_seq: int) -> None:
        if react is not None:
            react_sync(conn, message.token, react[0], message.sender, react[1], True, react[2])
        _enqueue(conn, rows)

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
        return functools.partial(_fence_holds, node=fences.node, token=token, fence=fences.held.get(token))

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
    ) -> asyncio.Future[tuple[list[D], list[object]]]:
        """A receipt, queued for the next group commit without waiting: the statuses it moves forward
        and the receipt's own outbox rows. ``describe`` turns each change into what the caller tells of
        it and the outbox rows stored with it (on the writer's thread, off the event loop). The future
        settles on commit with what it made of each change, in order, and the results of ``also`` (more
        work of the same transaction: a campaign's recipients). ``recording`` false: the message store
        keeps nothing (MESSAGE_RETENTION_DAYS=0). Receipts come two per send: queued unawaited, a
        device's receipts share commits instead of taking one each."""
        rows = list(deliveries)
        guard = self._guard(token)

        def job(conn: Conn) -> tuple[list[D], list[object]]:
            if not _allowed(guard, conn):
                return [], []
            told: list[D] = []
            out = list(rows)
            for change in apply_receipt_sync(conn, token, ids, status, at) if recording else ():
                data, more = describe(change)
                told.append(data)
                out += more
            results = [fn(conn) for fn in also]
            _enqueue(conn, out)
            return told, results

        return self.db.submit(job)

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
        """Queue a message this gateway sent for the next group commit without waiting: sends queued
        one after another share one job (:meth:`Db.submit_item`), their chats moved once each. The
        future settles on commit with whether each message of the job was new (its outbox rows are
        stored only then); this one's answer is at the index returned. ``react`` (message id, emoji,
        at): the message is this device's reaction, also shown on the message it reacts to."""
        return self.db.submit_item(_record_sent, (message, self._guard(message.token), list(deliveries), react))

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

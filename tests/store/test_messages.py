"""The message store's rules (gateway/store/messages.py, events.py), on every engine."""

from __future__ import annotations

import itertools

import pytest

from gateway.messages.retention import MessageRetention
from gateway.store import Store
from gateway.store.messages import NewMessage

TOKEN = "60123456789"
CHAT = "60198765432@s.whatsapp.net"


def out(msg_id: str, ts: float = 1000.0, chat: str = CHAT) -> NewMessage:
    return NewMessage(TOKEN, msg_id, chat, "out", "text", "hi", ts, "sent", (("pending", ts), ("sent", ts)), True)


def incoming(msg_id: str, ts: float = 1000.0, chat: str = CHAT, name: str | None = "Bob") -> NewMessage:
    return NewMessage(
        TOKEN, msg_id, chat, "in", "text", "yo", ts, "received", (("received", ts),), sender="60198765432",
        sender_name=name,
    )  # fmt: skip


@pytest.mark.parametrize("order", list(itertools.permutations(["delivered", "read", "delivered", "read"], 4))[:6])
async def test_status_ends_the_same_in_any_receipt_order(store: Store, order: tuple[str, ...]) -> None:
    """Receipts arriving in any order, repeated, leave `read` with the whole history, and only moves are told."""
    await store.record_message(out("A"))
    told = []
    for i, status in enumerate(order):
        changes, _ = await store.submit_receipt(TOKEN, ["A"], status, 1001.0 + i, [], lambda c: (c.status, []))
        told += changes
    row = await store.get_message(TOKEN, "A", history=True)
    assert row is not None and row.status == "read"
    assert [s for s, _ in row.history] == ["pending", "sent", "delivered", "read"]
    assert told in (["delivered", "read"], ["read"])  # a late delivered after read is not a change


async def test_recording_twice_changes_nothing_and_receipts_for_unknown_ids_are_ignored(store: Store) -> None:
    assert await store.record_message(incoming("X")) is not None
    assert await store.record_message(incoming("X")) is None
    assert await store.submit_receipt(TOKEN, ["nope", "X"], "read", 1.0, [], lambda c: (c, [])) == ([], [])
    chats = await store.list_chats(TOKEN, limit=10)
    assert [(c.jid, c.unread, c.name) for c in chats] == [(CHAT, 1, "Bob")]


async def test_cursor_pages_have_no_duplicates_or_gaps_under_concurrent_inserts(store: Store) -> None:
    for i in range(25):
        await store.record_message(incoming(f"M{i:02d}", ts=1000.0 + i))
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_messages(TOKEN, limit=10, before_seq=cursor)
        seen += [m.id for m in page]
        if len(page) < 10:
            break
        cursor = page[-1].seq
        # new messages arrive between pages: they are newer, so never on a later page
        newer = incoming(f"N{len(seen):02d}", ts=2000.0)
        await store.record_message(newer)
    assert seen == [f"M{i:02d}" for i in reversed(range(25))]


async def test_mark_read_up_to_a_message_recounts_unread(store: Store) -> None:
    seqs = [await store.record_message(incoming(f"I{i}", ts=1000.0 + i)) for i in range(3)]
    ids = await store.mark_chat_read(TOKEN, CHAT, seqs[1] or 0, 5000.0)
    assert ids == ["I0", "I1"]
    (chat,) = await store.list_chats(TOKEN, limit=1)
    assert chat.unread == 1
    # a message typed on the phone means its owner read the chat
    phone = out("P", ts=1100.0)
    phone.read_chat = True
    await store.record_message(phone)
    (chat,) = await store.list_chats(TOKEN, limit=1)
    assert (chat.unread, chat.last is not None and chat.last.id) == (0, "P")


async def test_retention_prunes_old_messages_in_small_batches(store: Store) -> None:
    """Rows older than the window go, batch by batch (never a table scan); newer ones and their chats stay."""
    for i in range(23):
        await store.record_message(incoming(f"old{i}", ts=100.0, chat=f"6019876{i:04d}@s.whatsapp.net"))
    for i in range(3):
        await store.record_message(out(f"new{i}", ts=10 * 86400.0))
    retention = MessageRetention(store, days=1, clock=lambda: 10 * 86400.0 + 1, batch=5, pause_s=0)
    assert await retention.prune() == 23
    left = await store.list_messages(TOKEN, limit=100)
    assert sorted(m.id for m in left) == ["new0", "new1", "new2"]
    assert [c.jid for c in await store.list_chats(TOKEN, limit=100)] == [CHAT]
    assert await retention.prune() == 0


async def test_deleting_a_device_removes_its_messages_and_chats(store: Store) -> None:
    await store.record_message(incoming("D1"))
    assert await store.delete_device_messages(TOKEN) == 1
    assert await store.list_messages(TOKEN, limit=10) == []
    assert await store.list_chats(TOKEN, limit=10) == []


async def test_chat_pages_keep_the_first_pages_order_when_a_chat_moves(store: Store) -> None:
    """Chats paged with a snapshot: one that moves to the top between two pages is neither skipped nor repeated."""
    for i in range(6):
        await store.record_message(incoming(f"C{i}", ts=1000.0 + i, chat=f"6019876{i:04d}@s.whatsapp.net"))
    first = await store.list_chats(TOKEN, limit=3)
    snapshot = first[0].last_seq
    await store.record_message(incoming("MOVE", ts=2000.0, chat="60198760000@s.whatsapp.net"))  # the oldest moves
    rest = await store.list_chats(TOKEN, limit=10, before_seq=first[-1].pos, snapshot=snapshot)
    seen = [c.jid for c in first + rest]
    assert len(seen) == 6 and len(set(seen)) == 6 and seen[-1] == "60198760000@s.whatsapp.net"

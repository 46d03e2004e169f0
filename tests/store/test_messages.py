"""The message store's rules (gateway/store/messages.py, events.py), on every engine."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import pytest

from gateway.messages.retention import MessageRetention
from gateway.store import Store
from gateway.store.messages import JSON_ROWS, NewMessage
from tests.store.jobs import settled

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
        changes, _ = await settled(store.submit_receipt(TOKEN, ["A"], status, 1001.0 + i, [], lambda c: (c.status, [])))
        told += changes
    row = await store.get_message(TOKEN, "A", history=True)
    assert row is not None and row.status == "read"
    assert [s for s, _ in row.history] == ["pending", "sent", "delivered", "read"]
    assert told in (["delivered", "read"], ["read"])  # a late delivered after read is not a change


async def test_recording_twice_changes_nothing_and_receipts_for_unknown_ids_are_ignored(store: Store) -> None:
    assert await store.record_message(incoming("X")) is not None
    assert await store.record_message(incoming("X")) is None
    assert await settled(store.submit_receipt(TOKEN, ["nope", "X"], "read", 1.0, [], lambda c: (c, []))) == ([], [])
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


def _statements_for(sends: int, tmp_path: Path) -> int:
    """Statements SQLite runs for one job of ``sends`` sends to two chats and their two receipts each."""
    from gateway.store import db as db_module
    from gateway.store.events import _message_events, _Receipt
    from gateway.store.writer import connect_sync

    conn = connect_sync(tmp_path / f"count-{sends}.db")
    db_module._set_up(conn)
    ids = [f"M{i}" for i in range(sends)]
    items: list[Any] = [(out(i, chat=f"60{n % 2}@s.whatsapp.net"), None, [], None) for n, i in enumerate(ids)]
    for status in ("delivered", "read"):
        for half in (ids[: sends // 2], ids[sends // 2 :]):
            items.append(_Receipt(TOKEN, half, status, 2000.0, [], lambda c: (c, []), True, (), None))
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    conn.execute("BEGIN IMMEDIATE")
    results = _message_events(conn, items)
    conn.execute("COMMIT")
    conn.set_trace_callback(None)
    assert results[:sends] == [True] * sends and [len(r[0]) for r in results[sends:]] == [sends // 2] * 4
    # every send was new, as the INSERT's row count says: no second look at which ones landed
    assert not [s for s in statements if "SELECT seq FROM messages WHERE seq" in s], statements
    assert (
        conn.execute("SELECT COUNT(*) FROM messages WHERE status = 'read' AND status_at = 2000.0").fetchone()[0]
        == sends
    )
    assert conn.execute("SELECT COUNT(*) FROM message_status").fetchone()[0] == 4 * sends
    conn.close()
    return len(statements)


def test_a_job_of_sends_and_receipts_costs_a_few_statements_whatever_its_size(tmp_path: Path) -> None:
    """The sqlite3 module lets go of the GIL around every statement, and under load the event loop holds
    it: a writer making a few statements per message fell behind without bound. A job's statements grow
    with the log of its size (runs of powers of two; from JSON_ROWS rows, one JSON parameter), never with
    the number of messages or receipts."""
    small, large = _statements_for(20, tmp_path), _statements_for(400, tmp_path)
    assert large <= small + 8 and large < 30, (small, large)


@pytest.mark.parametrize("job", [1, JSON_ROWS], ids=["small job", "big job"])
async def test_a_message_queued_with_others_is_stored_as_one_recorded_alone(store: Store, job: int) -> None:
    """A big job of sends reaches SQLite as one JSON document (``_insert_json_sync``, from ``JSON_ROWS``
    messages), a small one and PostgreSQL's as bound parameters: either way every column reads back as
    the one-by-one path stores it — text with quotes, escapes and emoji, a nested payload, an empty
    payload as none, status_at from the last history entry, the sender's LID and an error — with its
    history in order; a message queued twice in the job is stored once, its history once."""
    payload = {"caption": 'é "q" \\ \n 😀', "mentions": ["601", "602"], "media": {"size": 12, "ratio": 1.5}}

    def message(msg_id: str, **kw: Any) -> NewMessage:
        fields: dict[str, Any] = {
            "token": TOKEN, "id": msg_id, "chat": CHAT, "direction": "out", "type": "image", "text": 'a "b" \\ ☃',
            "ts": 1000.25, "status": "failed", "history": (("pending", 999.5), ("failed", 1001.75)),
            "from_me": True, "sender": "60123456789", "sender_lid": "123@lid", "payload": payload, "error": "E",
        }  # fmt: skip
        return NewMessage(**{**fields, **kw})

    variants: list[dict[str, Any]] = [{}, {"payload": {}, "text": None, "history": ()}, {"payload": None}]
    for n, kw in enumerate(variants):
        await store.record_message(message(f"ALONE{n}", **kw))
    queued = [store.submit_sent(message(f"QUEUED{n}", **kw)) for n, kw in enumerate(variants)]
    queued.append(store.submit_sent(message("QUEUED0")))  # again, in the same job
    queued += [store.submit_sent(out(f"FILL{i}")) for i in range(job - len(queued))]
    assert len({id(f) for f, _ in queued}) == 1
    assert (await queued[0][0])[:4] == [True, True, True, False]
    for n, kw in enumerate(variants):
        a = await store.get_message(TOKEN, f"ALONE{n}", history=True)
        q = await store.get_message(TOKEN, f"QUEUED{n}", history=True)
        assert a is not None and q is not None
        assert dataclasses.replace(q, seq=0, id="") == dataclasses.replace(a, seq=0, id=""), kw
        assert q.payload == (payload if kw.get("payload", payload) else {}) and q.text == kw.get("text", 'a "b" \\ ☃')
        assert q.status_at == (1001.75 if "history" not in kw else 1000.25)
    last = await store.get_message(TOKEN, f"FILL{job - 5}", history=True) if job > 4 else None
    assert last is None or [s for s, _ in last.history] == ["pending", "sent"]
    orphans = await store.db.fetchone("SELECT COUNT(*) FROM message_status WHERE seq NOT IN (SELECT seq FROM messages)")
    assert orphans is not None and orphans[0] == 0  # none for the repeat that was not stored

"""Messages, their status history and the chats they form (CONTRACT §12).

One row per (device token, message id) in ``messages``; ``seq`` (the rowid)
orders them as they were stored and is the list's cursor, so a page boundary
never moves when new messages arrive. ``message_status`` keeps every status a
message reached, with when; ``chats`` is maintained on insert (last message,
unread count) so ``GET /devices/{token}/chats`` reads one row per chat.

Rules:

- an outgoing status only moves forward (pending → sent → delivered → read →
  played); a receipt that arrives late or twice is recorded in the history
  but never moves the status back — so any arrival order ends in the same state;
- recording a message twice (a redelivery) changes nothing;
- retention deletes the oldest rows in small batches, each its own short
  transaction (``prune_sync``), so a prune never holds the write lock long.

The ``*_sync`` functions run in the writer's thread inside a group-commit job
(the pump stores a message with its webhook outbox rows in one transaction).
"""

from __future__ import annotations

import functools
import sqlite3
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeGuard

import orjson

from gateway.store.conn import Conn
from gateway.store.db import Db

RANK = {"failed": -1, "pending": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4}
PRUNE_BATCH = 500

_COLUMNS = (
    "seq, token, id, chat, direction, from_me, sender, sender_lid, sender_name, type, text, payload, "
    "status, status_at, error, ts, edited_at, revoked_at"
)
_INSERT_COLUMNS = (
    "token, id, chat, direction, from_me, sender, sender_lid, sender_name, type, text, payload, status, status_at, "
    "error, ts"
)
_INSERT = f"INSERT INTO messages ({_INSERT_COLUMNS}) VALUES ({','.join('?' * 15)}) ON CONFLICT (token, id) DO NOTHING"
_CHAT = """
INSERT INTO chats (token, jid, name, is_group, last_seq, last_at, unread) VALUES (?,?,?,?,?,?,?)
ON CONFLICT (token, jid) DO UPDATE SET
    name     = COALESCE(excluded.name, chats.name),
    last_seq = excluded.last_seq,
    last_at  = excluded.last_at,
    unread   = CASE WHEN ? = 1 THEN 0 ELSE chats.unread + excluded.unread END
"""


@dataclass(slots=True)
class NewMessage:
    """A message to store. ``history`` is every status it already went through, with when."""

    token: str
    id: str
    chat: str
    direction: str  # "in" | "out"
    type: str
    text: str | None
    ts: float
    status: str
    history: tuple[tuple[str, float], ...]
    from_me: bool = False
    sender: str | None = None
    sender_lid: str | None = None
    sender_name: str | None = None
    payload: dict[str, Any] | None = None
    error: str | None = None
    read_chat: bool = False  # typed on the linked phone: its owner has read the chat

    @property
    def status_at(self) -> float:
        return self.history[-1][1] if self.history else self.ts


class StatusChange(NamedTuple):
    """A status a message moved to. A named tuple: two or three are made per send (a frozen dataclass
    costs four ``object.__setattr__`` calls each)."""

    id: str
    chat: str
    status: str
    at: float


@dataclass(slots=True)
class MessageRow:
    seq: int
    token: str
    id: str
    chat: str
    direction: str
    from_me: bool
    sender: str | None
    sender_lid: str | None
    sender_name: str | None
    type: str
    text: str | None
    payload: dict[str, Any]
    status: str
    status_at: float
    error: str | None
    ts: float
    edited_at: float | None
    revoked_at: float | None
    history: list[tuple[str, float]] = field(default_factory=list)


@dataclass(slots=True)
class ChatRow:
    jid: str
    name: str | None
    is_group: bool
    last_seq: int
    last_at: float
    unread: int
    last: MessageRow | None
    pos: int = 0  # its place in the list's order: last_seq, or where it stood at a paging snapshot

    def __post_init__(self) -> None:
        self.pos = self.pos or self.last_seq


def _row(r: Any, offset: int = 0) -> MessageRow:
    return MessageRow(
        seq=r[offset],
        token=r[offset + 1],
        id=r[offset + 2],
        chat=r[offset + 3],
        direction=r[offset + 4],
        from_me=bool(r[offset + 5]),
        sender=r[offset + 6],
        sender_lid=r[offset + 7],
        sender_name=r[offset + 8],
        type=r[offset + 9],
        text=r[offset + 10],
        payload=orjson.loads(r[offset + 11]) if r[offset + 11] else {},
        status=r[offset + 12],
        status_at=r[offset + 13],
        error=r[offset + 14],
        ts=r[offset + 15],
        edited_at=r[offset + 16],
        revoked_at=r[offset + 17],
    )


_CHAT_SELECT = "SELECT c.jid, c.name, c.is_group, c.last_seq, c.last_at, c.unread, " + ", ".join(
    f"m.{c.strip()}" for c in _COLUMNS.split(",")
)


def _chat(r: Any, pos: int = 0) -> ChatRow:
    return ChatRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5], _row(r, 6) if r[6] is not None else None, pos)


# --- writes (in the writer's thread) ---------------------------------------------------------------


def record_sync(conn: Conn, m: NewMessage) -> int | None:
    """Store ``m`` with its history and move its chat; None when it was stored already."""
    seq = _insert_sync(conn, m)
    if seq is not None:
        _move_chat_sync(conn, m, seq)
    return seq


def _insert_sync(conn: Conn, m: NewMessage) -> int | None:
    """The message and its history, not its chat; None when it was stored already."""
    cur = conn.execute(_INSERT, _values(m))
    if cur.rowcount == 0:
        return None
    seq = int(cur.lastrowid or 0)
    _add_history_sync(conn, [(seq, status, at) for status, at in m.history])
    return seq


def _add_history_sync(conn: Conn, rows: list[tuple[int, str, float]]) -> None:
    """``(seq, status, at)`` rows into the status history, in order: a status already there keeps its
    first time. Multi-row statements (see :data:`MAX_ROWS`), or on SQLite from :data:`JSON_ROWS` rows
    one statement over the rows as JSON."""
    if not rows:
        return
    if _as_one_json(conn, len(rows)):
        conn.execute(_HISTORY_JSON, (_as_json(rows),))
        return
    for part in _pieces(rows, 2 * MAX_ROWS):
        values = ",".join(["(?,?,?)"] * len(part))
        conn.execute(
            f"INSERT OR IGNORE INTO message_status (seq, status, at) VALUES {values}", [v for row in part for v in row]
        )


def _move_chat_sync(conn: Conn, m: NewMessage, seq: int) -> None:
    incoming = m.direction == "in"
    is_group = m.chat.endswith("@g.us")
    name = m.sender_name if incoming and not is_group else None
    conn.execute(_CHAT, (m.token, m.chat, name, int(is_group), seq, m.ts, int(incoming), int(m.read_chat)))


def record_sent_sync(conn: Conn, messages: Iterable[tuple[NewMessage, Callable[[int], None] | None]]) -> list[bool]:
    """Messages this gateway sent, queued together (:meth:`Db.submit_item`): each stored as
    :func:`record_sync` does (``then(seq)`` runs for each new one, in order, in the same transaction),
    but set-based (:func:`_insert_many_sync`) and each chat moved once, to its last message of the
    batch — exactly what moving it for each would leave, as an outgoing message changes neither the
    chat's name nor its unread count. Whether each was new, in order."""
    batch = list(messages)
    seqs = _insert_many_sync(conn, [m for m, _ in batch])
    last: dict[tuple[str, str], tuple[NewMessage, int]] = {}
    for (m, then), seq in zip(batch, seqs, strict=True):
        if seq is None:
            continue
        if then is not None:
            then(seq)
        if m.direction == "out" and not m.read_chat:
            last[(m.token, m.chat)] = (m, seq)
        else:  # moved now, and past any earlier message of the batch in the chat
            last.pop((m.token, m.chat), None)
            _move_chat_sync(conn, m, seq)
    for m, seq in last.values():
        _move_chat_sync(conn, m, seq)
    return [seq is not None for seq in seqs]


# Set-based writes use a handful of statements per batch, not a few per message. On SQLite this is
# what lets the writer keep up at all: the sqlite3 module lets go of the GIL around every step of
# every statement, and under load the event loop holds it, so each step costs the writer's thread
# a wait for the GIL (measured: a batch of 18,380 sends took 5.9 s of wall time for 0.69 s of CPU,
# its queue and memory growing without bound). Statements carry a power of two of rows (or of ids,
# padded with repeats), so a few shapes stay in each connection's statement cache.
MAX_ROWS = 256  # rows per multi-row statement: 256 x 16 parameters, far below either engine's limit


def _pieces(items: list[Any], limit: int = MAX_ROWS) -> Iterable[list[Any]]:
    """``items`` in runs of powers of two (at most ``limit``): 37 → 32, 4, 1."""
    i = 0
    while i < len(items):
        size = min(limit, 1 << ((len(items) - i).bit_length() - 1))
        yield items[i : i + size]
        i += size


def _padded(ids: list[str]) -> list[str]:
    """``ids`` repeated at the end up to a power of two (an ``IN`` list's duplicates change nothing)."""
    return ids + [ids[-1]] * ((1 << (len(ids) - 1).bit_length()) - len(ids)) if ids else ids


def _new_seqs(conn: Conn, n: int) -> list[int]:
    """``n`` new message keys, in order. SQLite: one writer owns the file, so after the largest key
    (what SQLite itself would pick); PostgreSQL: from the column's sequence (nodes insert side by side)."""
    if isinstance(conn, sqlite3.Connection):
        top = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0])
        return list(range(top + 1, top + 1 + n))
    rows = conn.execute(
        "SELECT nextval(pg_get_serial_sequence('messages', 'seq')) FROM generate_series(1, ?)", (n,)
    ).fetchall()
    return [int(r[0]) for r in rows]


def _insert_many_sync(conn: Conn, messages: list[NewMessage]) -> list[int | None]:
    """Store ``messages`` with their histories, not their chats: each one's seq, None for one stored
    already (or earlier in the list). A few statements for the whole list (see :data:`MAX_ROWS`).

    Each message is given its seq up front; a message stored already is skipped by its unique key,
    so when fewer rows landed than were sent, the seqs that exist say which did (rare: a redelivery,
    or another node storing the same message at the same moment)."""
    fresh = _new_seqs(conn, len(messages))
    if _as_one_json(conn, len(messages)):
        return _insert_json_sync(conn, messages, fresh)
    seqs: list[int | None] = list(fresh)
    rows = [(seq, *_values(m)) for seq, m in zip(seqs, messages, strict=True)]
    for chunk in _pieces(rows):
        if conn.execute(_insert_many(len(chunk)), [v for row in chunk for v in row]).rowcount != len(chunk):
            wanted = [row[0] for row in chunk]
            marks = ",".join("?" * len(wanted))
            landed = {r[0] for r in conn.execute(f"SELECT seq FROM messages WHERE seq IN ({marks})", wanted)}
            lost = set(wanted) - landed
            seqs = [None if seq in lost else seq for seq in seqs]
    history = [
        (seq, status, at) for seq, m in zip(seqs, messages, strict=True) if seq is not None for status, at in m.history
    ]
    _add_history_sync(conn, history)
    return seqs


# From this many rows a write goes to SQLite as one JSON parameter (:func:`_insert_json_sync`). The
# sqlite3 module holds the GIL while it binds parameters — sixteen per message, three per history row
# and per status move, the writer's largest piece of GIL-held work — but not while SQLite runs a
# statement. Unpacking JSON costs SQLite ~3 µs of CPU per message more than bound parameters do
# (python -m bench.writer_cost), a price worth paying only when the event loop wants the GIL back: under
# load, when a group commit holds hundreds of sends. A quiet gateway's small commits bind.
# (SQLite 3.38 has every piece the JSON statements use: ->>, UPDATE … FROM, MATERIALIZED; Debian 12 ships
# 3.40. An older library binds, whatever the size.)
JSON_ROWS = 64 if sqlite3.sqlite_version_info >= (3, 38) else sys.maxsize


def _as_one_json(conn: Conn, rows: int) -> TypeGuard[sqlite3.Connection]:
    """Whether a write of ``rows`` rows goes to ``conn`` as one JSON parameter (see :data:`JSON_ROWS`)."""
    return rows >= JSON_ROWS and isinstance(conn, sqlite3.Connection)


def _insert_json_sync(conn: sqlite3.Connection, messages: list[NewMessage], fresh: list[int]) -> list[int | None]:
    """:func:`_insert_many_sync` on SQLite for a big job (see :data:`JSON_ROWS`): the messages as one
    JSON array (orjson writes the dataclasses in C), unpacked by SQLite (``json_each``) with the GIL
    released, and their histories likewise: two statements, one parameter each (and the first seq)."""
    seqs: list[int | None] = list(fresh)
    first, last = fresh[0], fresh[-1]
    if conn.execute(_INSERT_JSON, (first, _as_json(messages))).rowcount != len(messages):
        landed = {r[0] for r in conn.execute("SELECT seq FROM messages WHERE seq BETWEEN ? AND ?", (first, last))}
        seqs = [seq if seq in landed else None for seq in seqs]
    # The histories on their own: SQLite parses a document this small far faster than the whole again.
    conn.execute(_HISTORY_OF_JSON, (first, _as_json([m.history for m in messages])))
    return seqs


def _as_json(value: Any) -> str:
    return orjson.dumps(value).decode()


# A NewMessage as orjson writes it (its fields by name) → a messages row; seq is the first seq plus its
# place in the array. The payload's JSON is SQLite's rendering of orjson's (the same value); an empty one
# is NULL, as in _values. Each element's text is taken once (MATERIALIZED): read straight from json_each,
# ``value`` is rendered again for each of its sixteen uses, twice the CPU. (The WITH after INSERT, not
# before it: Python's sqlite3 gives a statement that starts with WITH no rowcount.)
_INSERT_JSON = f"""
INSERT INTO messages (seq, {_INSERT_COLUMNS})
WITH m (k, v) AS MATERIALIZED (SELECT key, value FROM json_each(?2))
SELECT ?1 + k, v->>'token', v->>'id', v->>'chat', v->>'direction', v->>'from_me',
       v->>'sender', v->>'sender_lid', v->>'sender_name', v->>'type', v->>'text',
       CASE WHEN v->'payload' NOT IN ('null', '{{}}') THEN v->'payload' END,
       v->>'status', COALESCE(v->>'$.history[#-1][1]', v->>'ts'), v->>'error', v->>'ts'
FROM m WHERE true  -- (the WHERE tells SQLite's parser that ON starts the upsert, not a join)
ON CONFLICT (token, id) DO NOTHING
"""
# The histories (one array of [status, at] pairs per message of _INSERT_JSON, in its order) of the
# messages that landed: a seq skipped by a conflict was never stored.
_HISTORY_OF_JSON = """
INSERT OR IGNORE INTO message_status (seq, status, at)
SELECT ?1 + m.key, h.value->>0, h.value->>1
FROM json_each(?2) AS m, json_each(m.value) AS h
WHERE EXISTS (SELECT 1 FROM messages WHERE seq = ?1 + m.key)
"""
_HISTORY_JSON = """
INSERT OR IGNORE INTO message_status (seq, status, at)
SELECT value->>0, value->>1, value->>2 FROM json_each(?)
"""


def _values(m: NewMessage) -> tuple[Any, ...]:
    """A message's columns for :data:`_INSERT` (after ``seq`` in :func:`_insert_many`)."""
    return (
        m.token,
        m.id,
        m.chat,
        m.direction,
        int(m.from_me),
        m.sender,
        m.sender_lid,
        m.sender_name,
        m.type,
        m.text,
        orjson.dumps(m.payload).decode() if m.payload else None,
        m.status,
        m.status_at,
        m.error,
        m.ts,
    )


@functools.cache
def _insert_many(n: int) -> str:
    """The multi-row INSERT of ``n`` messages with their seqs (:func:`_insert_many_sync`)."""
    row = "(" + ",".join("?" * 16) + ")"
    return (
        f"INSERT INTO messages (seq, {_INSERT_COLUMNS}) VALUES {','.join([row] * n)} ON CONFLICT (token, id) DO NOTHING"
    )


def record_many_sync(conn: Conn, messages: Iterable[NewMessage]) -> int:
    """Store a batch (bulk loads, the benchmark); returns how many were new."""
    return sum(record_sync(conn, m) is not None for m in messages)


RECEIPT_CHUNK = 512  # message ids per statement: far below either engine's limit on parameters


ReceiptIds = tuple[str, Sequence[str], str, float]  # (device token, message ids, status, at)


def apply_receipt_batch_sync(
    conn: Conn,
    receipts: Sequence[ReceiptIds],
    queued: tuple[Mapping[tuple[str, str], int], Sequence[int]] | None = None,
) -> list[list[StatusChange]]:
    """Receipts for messages these devices sent, applied in order: a status moves forward only, the
    history keeps every status with when it was first reached. Each receipt's changes, in the order of
    its ids (each id once). ``queued`` (where each message stored by this same transaction was queued,
    by (token, id); where each receipt was): a receipt is blind to a message queued after it
    (:func:`gateway.store.events`).

    Set-based, whatever the number of receipts and ids: the messages named, read once (one JSON row per
    512 ids); their moves worked out here, in order; then the history rows and the moves, a few
    multi-row statements (see :data:`MAX_ROWS`)."""
    named: dict[str, list[str]] = {}
    for token, ids, _status, _at in receipts:
        named.setdefault(token, []).extend(ids)
    state: dict[tuple[str, str], list[Any]] = {}  # (token, id) → [chat, status, seq], as the receipts move it
    for token, ids in named.items():
        for piece in _pieces(list(dict.fromkeys(ids)), RECEIPT_CHUNK):
            chunk = _padded(piece)
            row = conn.execute(
                "SELECT json_group_array(json_array(id, chat, status, seq)) FROM messages "
                f"WHERE token = ? AND id IN ({','.join('?' * len(chunk))}) AND direction = 'out'",
                (token, *chunk),
            ).fetchone()
            for msg_id, chat, status, seq in orjson.loads(row[0]) if row is not None and row[0] is not None else ():
                state[(token, msg_id)] = [chat, status, seq]
    history: list[tuple[int, str, float]] = []
    moved: dict[int, tuple[int, str, float]] = {}  # seq → (seq, status, at): each message's last move
    out: list[list[StatusChange]] = []
    born, positions = queued if queued is not None else ({}, ())
    new_change = tuple.__new__  # a StatusChange without the named tuple's Python-level __new__ (one per move)
    for k, (token, ids, status, at) in enumerate(receipts):
        rank = RANK.get(status, -1)  # an unknown status is recorded but moves nothing
        here = positions[k] if born else -1
        changes: list[StatusChange] = []
        for msg_id in dict.fromkeys(ids):
            key = (token, msg_id)
            found = state.get(key)
            if found is None or (born and born.get(key, -1) > here):
                continue
            chat, current, seq = found
            history.append((seq, status, at))
            if rank >= 0 and RANK.get(current, -1) < rank:
                found[1] = status
                moved[seq] = (seq, status, at)
                changes.append(new_change(StatusChange, (msg_id, chat, status, at)))
        out.append(changes)
    _add_history_sync(conn, history)
    if _as_one_json(conn, len(moved)):
        conn.execute(_MOVE_JSON, (_as_json(list(moved.values())),))
        return out
    for part in _pieces(list(moved.values())):
        conn.execute(_move_many(len(part)), [v for move in part for v in move])
    return out


# (seq, status, at) rows as JSON: each message to its own status and status_at (SQLite, see JSON_ROWS).
_MOVE_JSON = """
UPDATE messages SET status = m.value->>1, status_at = m.value->>2
FROM json_each(?) AS m WHERE messages.seq = m.value->>0
"""


@functools.cache
def _move_many(n: int) -> str:
    """The UPDATE that gives ``n`` messages (by seq) each its own status and status_at."""
    row = "(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION))"  # typed for PostgreSQL
    return (
        f"WITH moved (seq, status, at) AS (VALUES {','.join([row] * n)}) "
        "UPDATE messages SET status = moved.status, status_at = moved.at FROM moved WHERE messages.seq = moved.seq"
    )


def edit_sync(conn: Conn, token: str, msg_id: str, text: str | None, at: float) -> bool:
    cur = conn.execute(
        "UPDATE messages SET text = ?, edited_at = ? WHERE token = ? AND id = ?", (text, at, token, msg_id)
    )
    return cur.rowcount > 0


def revoke_sync(conn: Conn, token: str, msg_id: str, at: float) -> bool:
    cur = conn.execute(
        "UPDATE messages SET revoked_at = ? WHERE token = ? AND id = ? AND revoked_at IS NULL", (at, token, msg_id)
    )
    return cur.rowcount > 0


def _update_payload(conn: Conn, token: str, msg_id: str, change: Callable[[dict[str, Any]], None]) -> bool:
    """Read-modify-write of a stored message's optional fields (in the writer's thread, so no lost update)."""
    row = conn.execute("SELECT seq, payload FROM messages WHERE token = ? AND id = ?", (token, msg_id)).fetchone()
    if row is None:
        return False
    payload: dict[str, Any] = orjson.loads(row[1]) if row[1] else {}
    change(payload)
    conn.execute("UPDATE messages SET payload = ? WHERE seq = ?", (orjson.dumps(payload).decode(), row[0]))
    return True


def react_sync(conn: Conn, token: str, msg_id: str, sender: str | None, emoji: str, from_me: bool, at: str) -> bool:
    """A reaction to a stored message: one per person (a new one replaces theirs, ``""`` removes it)."""

    def change(payload: dict[str, Any]) -> None:
        kept = [r for r in payload.get("reactions", ()) if (r.get("fromMe"), r.get("from")) != (from_me, sender)]
        if emoji:
            kept.append({"from": sender, "emoji": emoji, "fromMe": from_me, "timestamp": at})
        if kept:
            payload["reactions"] = kept
        else:
            payload.pop("reactions", None)

    return _update_payload(conn, token, msg_id, change)


def media_sync(conn: Conn, token: str, msg_id: str, media: dict[str, Any]) -> bool:
    """A stored message's media after a new download (its ``url`` is signed when read, never stored)."""

    def change(payload: dict[str, Any]) -> None:
        payload["media"] = {k: v for k, v in media.items() if k != "url"}

    return _update_payload(conn, token, msg_id, change)


def mark_read_sync(conn: Conn, token: str, chat: str, upto_seq: int, at: float) -> list[str]:
    """Incoming messages of ``chat`` up to ``upto_seq`` become read; the chat's unread count follows."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM messages WHERE token = ? AND chat = ? AND seq <= ? AND direction = 'in' "
            "AND status = 'received'",
            (token, chat, upto_seq),
        )
    ]
    if ids:
        conn.execute(
            "UPDATE messages SET status = 'read', status_at = ? WHERE token = ? AND chat = ? AND seq <= ? "
            "AND direction = 'in' AND status = 'received'",
            (at, token, chat, upto_seq),
        )
    left = conn.execute(
        "SELECT COUNT(*) FROM messages WHERE token = ? AND chat = ? AND direction = 'in' AND status = 'received'",
        (token, chat),
    ).fetchone()[0]
    conn.execute("UPDATE chats SET unread = ? WHERE token = ? AND jid = ?", (left, token, chat))
    return ids


def prune_sync(conn: Conn, before: float, batch: int = PRUNE_BATCH) -> tuple[int, bool]:
    """Delete up to ``batch`` of the oldest messages stored before ``before``.

    Reads only the first ``batch`` rows in storage order (never a scan of the
    table): returns (deleted, more) — ``more`` when the whole batch was old,
    so the caller runs another one.
    """
    rows = conn.execute("SELECT seq, ts FROM messages ORDER BY seq LIMIT ?", (batch,)).fetchall()
    old = [r[0] for r in rows if r[1] < before]
    if old:
        marks = ",".join("?" * len(old))
        conn.execute(f"DELETE FROM message_status WHERE seq IN ({marks})", old)
        conn.execute(f"DELETE FROM messages WHERE seq IN ({marks})", old)
    return len(old), bool(rows) and len(old) == len(rows)


def prune_chats_sync(conn: Conn, before: float) -> int:
    """Chats whose last message is older than ``before`` (so every message of theirs is gone)."""
    return conn.execute("DELETE FROM chats WHERE last_at < ?", (before,)).rowcount


def delete_device_sync(conn: Conn, token: str, batch: int = 5000) -> tuple[int, bool]:
    """Delete up to ``batch`` messages of a removed device (and, once none are left, its chats)."""
    seqs = [r[0] for r in conn.execute("SELECT seq FROM messages WHERE token = ? LIMIT ?", (token, batch))]
    if seqs:
        marks = ",".join("?" * len(seqs))
        conn.execute(f"DELETE FROM message_status WHERE seq IN ({marks})", seqs)
        conn.execute(f"DELETE FROM messages WHERE seq IN ({marks})", seqs)
        return len(seqs), True
    conn.execute("DELETE FROM chats WHERE token = ?", (token,))
    return 0, False


# --- reads -------------------------------------------------------------------------------------------


class MessageQueries:
    db: Db

    async def list_messages(
        self,
        token: str,
        *,
        limit: int,
        before_seq: int | None = None,
        chat: str | None = None,
        direction: str | None = None,
        type: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[MessageRow]:
        """Newest first (by storage order), ``limit`` rows below the cursor ``before_seq``."""
        where = ["token = ?"]
        args: list[Any] = [token]
        for clause, value in (
            ("chat = ?", chat),
            ("direction = ?", direction),
            ("type = ?", type),
            ("ts >= ?", since),
            ("ts <= ?", until),
            ("seq < ?", before_seq),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        index = "messages_chat" if chat is not None else "messages_token"
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM messages INDEXED BY {index} WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
            (*args, limit),
        )
        return [_row(r) for r in rows]

    async def get_message(self, token: str, msg_id: str, history: bool = False) -> MessageRow | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM messages WHERE token = ? AND id = ?", (token, msg_id))
        if r is None:
            return None
        row = _row(r)
        if history:
            hist = await self.db.fetchall("SELECT status, at FROM message_status WHERE seq = ? ORDER BY at", (row.seq,))
            row.history = sorted(((h[0], h[1]) for h in hist), key=lambda h: (h[1], RANK.get(h[0], 9)))
        return row

    async def list_chats(
        self, token: str, *, limit: int, before_seq: int | None = None, snapshot: int | None = None
    ) -> list[ChatRow]:
        """Most recent first (by their last message), ``limit`` chats below the position ``before_seq``.

        ``snapshot`` (the newest ``last_seq`` when the first page was read) keeps the order of the
        first page's moment: a chat whose last message came after it is placed where its last message
        up to the snapshot put it, so a chat that moves to the top between two pages is neither
        skipped nor listed twice. Chats that did not move are read by the ``chats_recent`` index alone;
        the ones that moved (usually few) each look up their position in ``messages_chat``.
        """
        cursor = " AND c.last_seq < ?" if before_seq is not None else ""
        args: tuple[Any, ...] = (token, before_seq, limit) if before_seq is not None else (token, limit)
        rows = await self.db.fetchall(
            f"{_CHAT_SELECT} FROM chats c LEFT JOIN messages m ON m.seq = c.last_seq"
            f" WHERE c.token = ?{cursor} ORDER BY c.last_seq DESC LIMIT ?",
            args,
        )
        chats = [_chat(r) for r in rows]
        if before_seq is None or snapshot is None:
            return chats
        moved = await self.db.fetchall(
            f"{_CHAT_SELECT}, p.pos FROM (SELECT ch.jid, (SELECT MAX(seq) FROM messages INDEXED BY messages_chat"
            " WHERE token = ch.token AND chat = ch.jid AND seq <= ?) AS pos FROM chats ch"
            " WHERE ch.token = ? AND ch.last_seq > ?) p"
            " JOIN chats c ON c.token = ? AND c.jid = p.jid LEFT JOIN messages m ON m.seq = c.last_seq"
            " WHERE p.pos < ?",
            (snapshot, token, snapshot, token, before_seq),
        )
        chats += [_chat(r, pos=r[-1]) for r in moved]
        chats.sort(key=lambda c: c.pos, reverse=True)
        return chats[:limit]

    async def chat_seq(self, token: str, chat: str) -> int | None:
        r = await self.db.fetchone("SELECT last_seq FROM chats WHERE token = ? AND jid = ?", (token, chat))
        return None if r is None else int(r[0])

    async def delete_device_messages(self, token: str) -> int:
        """Every message and chat of a removed device, in batches (its token may be reused by another account)."""
        total, more = 0, True
        while more:
            deleted, more = await self.db.run(lambda conn: delete_device_sync(conn, token))
            total += deleted
        return total

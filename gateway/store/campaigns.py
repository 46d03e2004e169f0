"""Campaigns and their recipients (CONTRACT §13): the only SQL of the campaigns.

A recipient's row moves ``pending`` → ``sending`` (the message id it goes out
under is stored first: its idempotency key) → ``sent`` → ``delivered`` →
``read``; or ends ``failed`` (with the error) or ``skipped`` (with the
reason). The counters on ``campaigns`` move in the same job as the rows, so
``GET /campaigns`` reads one row per campaign. ``pending`` counts the
recipients still to send (``sending`` included); ``sent`` ⊇ ``delivered`` ⊇
``read`` are cumulative, as the contract has them.

The ``*_sync`` functions run in the writer's thread (group commit, see
:class:`~gateway.store.db.Db`); each is one atomic job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.store.conn import Conn
from gateway.store.db import Db

# A receipt moves a recipient forward only; ``played`` (a voice note heard) counts as read.
_RANK = {"sending": 0, "sent": 1, "delivered": 2, "read": 3}
_RECEIPT = {"delivered": "delivered", "read": "read", "played": "read"}
ACTIVE = ("scheduled", "running", "paused")
CREATING = "creating"  # recipients still being stored: seen by no reader (see Campaigns.create)

_COLUMNS = (
    "id, owner_id, token, name, message, pace, validate, status, error, total, pending, sent, delivered, read, "
    "failed, skipped, created_at, start_at, started_at, finished_at"
)


@dataclass(slots=True)
class CampaignRow:
    id: str
    owner_id: int | None
    token: str
    name: str
    message: str  # JSON
    pace: str  # JSON
    validate: bool
    status: str
    error: str | None
    total: int
    pending: int
    sent: int
    delivered: int
    read: int
    failed: int
    skipped: int
    created_at: float
    start_at: float | None
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class RecipientRow:
    seq: int
    phone: str
    name: str | None
    vars: str | None  # JSON object of the recipient's own values
    status: str
    message_id: str | None


# (seq, phone, name, vars JSON, status, reason)
NewRecipient = tuple[int, str, str | None, str | None, str, str | None]


def _campaign(r: Sequence[Any]) -> CampaignRow:
    return CampaignRow(
        r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15],
        r[16], r[17], r[18], r[19],
    )  # fmt: skip


# --- writes (in the writer's thread) ---------------------------------------------------------------


def insert_campaign_sync(conn: Conn, c: CampaignRow) -> None:
    conn.execute(
        f"INSERT INTO campaigns ({_COLUMNS}) VALUES ({','.join('?' * 20)})",
        (
            c.id, c.owner_id, c.token, c.name, c.message, c.pace, int(c.validate), c.status, c.error, c.total,
            c.pending, c.sent, c.delivered, c.read, c.failed, c.skipped, c.created_at, c.start_at, c.started_at,
            c.finished_at,
        ),
    )  # fmt: skip


def fetch_campaign_sync(conn: Conn, campaign_id: str) -> CampaignRow | None:
    r = conn.execute(f"SELECT {_COLUMNS} FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    return _campaign(r) if r is not None else None


def insert_recipients_sync(conn: Conn, campaign_id: str, token: str, rows: list[NewRecipient]) -> None:
    conn.executemany(
        "INSERT INTO campaign_recipients (campaign_id, seq, token, phone, name, vars, status, reason) "
        "VALUES (?,?,?,?,?,?,?,?)",
        [
            (campaign_id, seq, token, phone, name, vars_, status, reason)
            for seq, phone, name, vars_, status, reason in rows
        ],
    )


def created_sync(conn: Conn, c: CampaignRow) -> None:
    """The recipients are all stored: the campaign gets its counts and its first status."""
    conn.execute(
        "UPDATE campaigns SET status = ?, total = ?, pending = ?, skipped = ?, started_at = ?, finished_at = ? "
        "WHERE id = ? AND status = ?",
        (c.status, c.total, c.pending, c.skipped, c.started_at, c.finished_at, c.id, CREATING),
    )


def drop_campaign_sync(conn: Conn, campaign_id: str) -> None:
    """A create that did not finish: its recipients, then its row."""
    conn.execute("DELETE FROM campaign_recipients WHERE campaign_id = ?", (campaign_id,))
    conn.execute("DELETE FROM campaigns WHERE id = ?", (campaign_id,))


def set_status_sync(
    conn: Conn,
    campaign_id: str,
    status: str,
    at: float,
    error: str | None = None,
    only_from: Iterable[str] = ACTIVE,
) -> bool:
    """Move the campaign to ``status`` if it is in one of ``only_from``; stamps started/finished."""
    allowed = tuple(only_from)
    marks = ",".join("?" * len(allowed))
    started = "COALESCE(started_at, ?)" if status == "running" else "started_at"
    finished = "?" if status in ("completed", "cancelled", "failed") else "finished_at"
    args: list[Any] = [status, error]
    if status == "running":
        args.append(at)
    if status in ("completed", "cancelled", "failed"):
        args.append(at)
    cur = conn.execute(
        f"UPDATE campaigns SET status = ?, error = ?, started_at = {started}, finished_at = {finished} "
        f"WHERE id = ? AND status IN ({marks})",
        (*args, campaign_id, *allowed),
    )
    return cur.rowcount > 0


def mark_sending_sync(conn: Conn, campaign_id: str, seq: int, message_id: str, at: float) -> None:
    """Before the send: the id it goes out under (a resend after a crash reuses it)."""
    conn.execute(
        "UPDATE campaign_recipients SET status = 'sending', message_id = ?, status_at = ? "
        "WHERE campaign_id = ? AND seq = ? AND status = 'pending'",
        (message_id, at, campaign_id, seq),
    )


def unmark_sending_sync(conn: Conn, campaign_id: str, seq: int) -> None:
    """The send was refused before it reached WhatsApp (device not connected): still to send."""
    conn.execute(
        "UPDATE campaign_recipients SET status = 'pending', message_id = NULL "
        "WHERE campaign_id = ? AND seq = ? AND status = 'sending'",
        (campaign_id, seq),
    )


def mark_sent_sync(conn: Conn, campaign_id: str, seq: int, message_id: str, at: float) -> bool:
    """After the send. False when a receipt got there first (the row is already past ``sending``)."""
    cur = conn.execute(
        "UPDATE campaign_recipients SET status = 'sent', message_id = ?, sent_at = ?, status_at = ? "
        "WHERE campaign_id = ? AND seq = ? AND status IN ('pending', 'sending')",
        (message_id, at, at, campaign_id, seq),
    )
    if cur.rowcount:
        conn.execute("UPDATE campaigns SET pending = pending - 1, sent = sent + 1 WHERE id = ?", (campaign_id,))
    return cur.rowcount > 0


def mark_done_sync(conn: Conn, campaign_id: str, seq: int, status: str, reason: str, at: float) -> bool:
    """A recipient that will not be sent: ``failed`` (the error) or ``skipped`` (why)."""
    assert status in ("failed", "skipped")
    cur = conn.execute(
        "UPDATE campaign_recipients SET status = ?, reason = ?, status_at = ? "
        "WHERE campaign_id = ? AND seq = ? AND status IN ('pending', 'sending')",
        (status, reason, at, campaign_id, seq),
    )
    if cur.rowcount:
        conn.execute(
            f"UPDATE campaigns SET pending = pending - 1, {status} = {status} + 1 WHERE id = ?", (campaign_id,)
        )
    return cur.rowcount > 0


def apply_receipts_sync(conn: Conn, token: str, ids: Iterable[str], status: str, at: float) -> set[str]:
    """A receipt for messages of ``token``: their campaign recipients move forward (never back).

    A receipt for a recipient still ``sending`` (the gateway stopped between the send and its record)
    proves it was sent: it counts as sent too. Returns the campaigns whose counts moved.
    """
    target = _RECEIPT.get(status)
    if target is None:
        return set()
    rank = _RANK[target]
    touched: set[str] = set()
    for msg_id in ids:
        for cid, seq, current in conn.execute(
            "SELECT campaign_id, seq, status FROM campaign_recipients WHERE token = ? AND message_id = ?",
            (token, msg_id),
        ).fetchall():
            now_rank = _RANK.get(current)
            if now_rank is None or now_rank >= rank:
                continue
            conn.execute(
                "UPDATE campaign_recipients SET status = ?, status_at = ?, sent_at = COALESCE(sent_at, ?) "
                "WHERE campaign_id = ? AND seq = ?",
                (target, at, at, cid, seq),
            )
            sent = 1 if now_rank == 0 else 0
            delivered = 1 if now_rank < 2 else 0
            read = 1 if target == "read" else 0
            conn.execute(
                "UPDATE campaigns SET pending = pending - ?, sent = sent + ?, delivered = delivered + ?, "
                "read = read + ? WHERE id = ?",
                (sent, sent, delivered, read, cid),
            )
            touched.add(cid)
    return touched


# --- reads and simple writes ---------------------------------------------------------------------


class CampaignQueries:
    db: Db

    async def get_campaign(self, campaign_id: str) -> CampaignRow | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM campaigns WHERE id = ?", (campaign_id,))
        return _campaign(r) if r is not None else None

    async def list_campaigns(self, owner_id: int | None, every: bool, limit: int) -> list[CampaignRow]:
        """Newest first: the caller's own (``every``: all of them, for the admin); none still being created."""
        if every:
            rows = await self.db.fetchall(
                f"SELECT {_COLUMNS} FROM campaigns WHERE status != ? ORDER BY created_at DESC, id LIMIT ?",
                (CREATING, limit),
            )
        else:
            rows = await self.db.fetchall(
                f"SELECT {_COLUMNS} FROM campaigns WHERE owner_id = ? AND status != ? "
                "ORDER BY created_at DESC, id LIMIT ?",
                (owner_id, CREATING, limit),
            )
        return [_campaign(r) for r in rows]

    async def campaign_tokens(self) -> set[str]:
        """The devices that ever ran a campaign: only their receipts can move a recipient."""
        return {r[0] for r in await self.db.fetchall("SELECT DISTINCT token FROM campaigns")}

    async def drop_unfinished_creates(self) -> int:
        """At start: campaigns whose create was cut short (the gateway died while storing recipients)."""
        rows = await self.db.fetchall("SELECT id FROM campaigns WHERE status = ?", (CREATING,))
        for (campaign_id,) in rows:
            await self.db.run(lambda conn, c=campaign_id: drop_campaign_sync(conn, c))  # type: ignore[misc]
        return len(rows)

    async def active_campaigns(self) -> list[CampaignRow]:
        marks = ",".join("?" * len(ACTIVE))
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM campaigns WHERE status IN ({marks}) ORDER BY created_at", ACTIVE
        )
        return [_campaign(r) for r in rows]

    async def next_recipients(self, campaign_id: str, limit: int) -> list[RecipientRow]:
        """The next to send, in the order given: the one interrupted mid-send (``sending``) first."""
        rows = await self.db.fetchall(
            "SELECT seq, phone, name, vars, status, message_id FROM campaign_recipients "
            "WHERE campaign_id = ? AND status IN ('sending', 'pending') ORDER BY status = 'pending', seq LIMIT ?",
            (campaign_id, limit),
        )
        return [RecipientRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def sent_since(self, campaign_id: str, since: float) -> int:
        r = await self.db.fetchone(
            "SELECT COUNT(*) FROM campaign_recipients WHERE campaign_id = ? AND sent_at >= ?", (campaign_id, since)
        )
        return int(r[0]) if r else 0

    async def iter_recipient_tuples(self, campaign_id: str, status: str | None) -> AsyncIterator[list[Any]]:
        """(phone, name, status, reason, message_id, sent_at, status_at) in the order given, in batches."""
        where, args = "campaign_id = ?", [campaign_id]
        if status is not None:
            # ``sending`` is still pending to a reader; ``sent`` lists every recipient that was sent.
            group = {"pending": ("pending", "sending"), "sent": ("sent", "delivered", "read")}.get(status, (status,))
            where += f" AND status IN ({','.join('?' * len(group))})"
            args += list(group)
        async for batch in self.db.iterate(
            "SELECT phone, name, status, reason, message_id, sent_at, status_at FROM campaign_recipients "
            f"WHERE {where} ORDER BY seq",
            args,
        ):
            yield batch

    async def list_recipients(
        self, campaign_id: str, status: str | None, limit: int, after_seq: int
    ) -> list[tuple[Any, ...]]:
        """(seq, phone, name, status, reason, message_id, sent_at, status_at), a page in the order given."""
        where, args = "campaign_id = ? AND seq > ?", [campaign_id, after_seq]
        if status is not None:
            group = {"pending": ("pending", "sending"), "sent": ("sent", "delivered", "read")}.get(status, (status,))
            where += f" AND status IN ({','.join('?' * len(group))})"
            args += list(group)
        rows = await self.db.fetchall(
            "SELECT seq, phone, name, status, reason, message_id, sent_at, status_at FROM campaign_recipients "
            f"WHERE {where} ORDER BY seq LIMIT ?",
            (*args, limit),
        )
        return [tuple(r) for r in rows]

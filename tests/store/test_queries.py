"""Every query class of the store on every engine: devices, the outbox, idempotency, accounts and
their credentials, media, pending media, and the hot path's units of work (gateway/store/events.py)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store import DeviceRow, MediaRow, NewDelivery, PendingMedia, Store
from gateway.store.accounts import DuplicateAccount
from gateway.store.messages import NewMessage, StatusChange
from gateway.store.outbox import AttemptResult
from tests.store.jobs import settled
from tests.support.constants import TOKEN

NOW = "2026-01-01T00:00:00.000Z"
CHAT = "60198765432@s.whatsapp.net"


def device(token: str = TOKEN, **kw: object) -> DeviceRow:
    return DeviceRow(token=token, status="disconnected", created_at=NOW, last_update=NOW, **kw)  # type: ignore[arg-type]


def delivery(n: int, token: str | None = TOKEN, owner: int | None = None, target: str = "device") -> NewDelivery:
    return NewDelivery(
        f"wh_{n}", "message.received", token, owner, "http://127.0.0.1:9/h", b"{\x00}", True, 1000.0 + n, target
    )


async def test_devices_round_trip_replace_stats_and_delete(store: Store) -> None:
    d = device(owner_id=7, name="Shop", webhook_url="https://x.test/h", webhook_events=["message"], webhook_secret="s")
    await store.save_device(d)
    await store.save_device(device("60111111111"))
    d.status, d.reconnecting, d.phone, d.messages_sent = "connected", True, "60123", 3
    await store.save_device(d, [delivery(1)])  # replaced whole, with an outbox row in the same job
    got = await store.get_device(TOKEN)
    assert got == d
    d.messages_received, d.last_update = 9, "2026-01-02T00:00:00.000Z"
    await store.save_stats([d])
    got = await store.get_device(TOKEN)
    assert got is not None and (got.messages_received, got.last_update, got.status) == (9, d.last_update, "connected")
    assert [r.token for r in await store.all_devices()] == sorted([TOKEN, "60111111111"])
    await store.delete_device(TOKEN)
    assert await store.get_device(TOKEN) is None
    assert [r.webhook_id for r in await store.list_deliveries(None, None, None, 10)] == ["wh_1"]


async def test_outbox_enqueue_claim_attempts_list_requeue_and_prune(store: Store) -> None:
    assert await store.enqueue([delivery(i, owner=1 if i % 2 else None) for i in range(5)]) == 5
    rows = await store.sync_outbox([], 0, 3)
    assert [r.webhook_id for r in rows] == ["wh_0", "wh_1", "wh_2"] and rows[0].body == b"{\x00}"
    assert rows[0].check_private is True and rows[0].status == "pending" and rows[0].target == "device"
    done = AttemptResult(rows[0].id, "delivered", 1, None, 0.0, 2000.0)
    failed = AttemptResult(rows[1].id, "failed", 5, "HTTP 500", 0.0, None)
    later = await store.sync_outbox([done, failed], rows[2].id, 10)
    assert [r.webhook_id for r in later] == ["wh_3", "wh_4"]
    counts, oldest = await store.outbox_stats()
    assert counts == {"delivered": 1, "failed": 1, "pending": 3} and oldest == 1002.0
    assert [r.webhook_id for r in await store.list_deliveries(1, None, None, 10)] == ["wh_3", "wh_1"]
    assert [r.webhook_id for r in await store.list_deliveries(None, "failed", TOKEN, 10)] == ["wh_1"]
    assert [r.webhook_id for r in await store.list_deliveries(None, None, None, 2, before=rows[2].id)] == [
        "wh_1",
        "wh_0",
    ]
    assert [r.id for r in await store.deliveries_by_id([rows[0].id, rows[2].id])] == [rows[0].id, rows[2].id]
    assert await store.requeue_failed(rows[1].id, 3000.0) and not await store.requeue_failed(rows[0].id, 3000.0)
    again = await store.get_delivery(rows[1].id)
    assert again is not None and (again.status, again.attempts, again.next_attempt_at) == ("pending", 0, 3000.0)
    await store.record_attempts([AttemptResult(rows[1].id, "failed", 1, "x", 0.0, None)])
    assert await store.prune_delivered(1000.0) == 0 and await store.prune_delivered(2001.0) == 1
    assert await store.get_delivery(rows[0].id) is None and await store.get_delivery(10**9) is None


async def test_outbox_rows_without_a_target_are_classified(store: Store) -> None:
    await store.enqueue([delivery(1, owner=None), delivery(2, owner=3)])
    await store.db.execute("UPDATE outbox SET target = NULL")
    await store.db.execute("UPDATE outbox SET url = ? WHERE webhook_id = 'wh_2'", ("https://op.test/",))
    assert await store.classify_deliveries("https://op.test/") == 2
    rows = {r.webhook_id: r.target for r in await store.list_deliveries(None, None, None, 10)}
    assert rows == {"wh_1": "device", "wh_2": "operator"}


async def test_idempotency_replaces_and_prunes(store: Store) -> None:
    assert await store.get_idempotent("k:1", "a") is None
    await store.save_idempotent("k:1", "a", "h1", {"id": "M1", "n": [1, 2]}, 100.0)
    await store.save_idempotent("k:1", "a", "h2", {"id": "M2"}, 200.0)
    got = await store.get_idempotent("k:1", "a")
    assert got is not None and (got.body_hash, got.data, got.created_at) == ("h2", {"id": "M2"}, 200.0)
    assert await store.prune_idempotency(150.0) == 0 and await store.prune_idempotency(250.0) == 1


async def test_accounts_keys_sessions_and_case_insensitive_logins(store: Store) -> None:
    uid = await store.create_account("Alice", "alice@example.com", "$argon2id$x", NOW, "whsec_1")
    for name, email, field in (("ALICE", "b@example.com", "username"), ("bob", "ALICE@example.COM", "email")):
        with pytest.raises(DuplicateAccount) as exc:
            await store.create_account(name, email, "h", NOW)
        assert exc.value.field == field
    other = await store.create_account("bob", "bob@example.com", "h", NOW)
    assert other != uid
    found = await store.account_by_login("username", "aLiCe")
    assert found is not None and found.id == uid and found.webhook_secret == "whsec_1"
    assert (await store.account_by_login("email", "ALICE@EXAMPLE.COM")) == found
    await store.set_account_webhook(uid, "https://a.test/h", ["message"])
    assert await store.set_account_webhook_secret(uid, "whsec_2", "whsec_1", 5000.0)
    await store.set_password_hash(uid, "h2")
    acct = await store.account(uid)
    assert acct is not None and (acct.webhook_url, acct.webhook_events, acct.password_hash) == (
        "https://a.test/h",
        ["message"],
        "h2",
    )
    assert (acct.webhook_secret, acct.webhook_secret_prev, acct.webhook_secret_prev_until) == (
        "whsec_2",
        "whsec_1",
        5000.0,
    )
    k1 = await store.create_api_key(uid, "ci", "hash1", "wgk_1", NOW)
    k2 = await store.create_api_key(uid, "login", "hash2", "wgk_2", NOW, session_hash="sess", expires_at=900.0)
    assert [k.id for k in await store.api_keys(uid, 100.0)] == [k1, k2]
    assert [k.id for k in await store.api_keys(uid, 1000.0)] == [k1]  # the session's key has expired
    cred = await store.credential_for_key("hash2", 100.0)
    assert cred is not None and (cred.account_id, cred.username, cred.expires_at) == (uid, "Alice", 900.0)
    await store.create_session("sess", uid, 0.0, 900.0)
    assert (await store.credential_for_session("sess", 100.0)) is not None
    assert await store.credential_for_session("sess", 901.0) is None
    assert await store.revoke_api_key(uid, k1, NOW) == "hash1" and await store.revoke_api_key(uid, k1, NOW) is None
    assert await store.credential_for_key("hash1", 100.0) is None
    assert sorted(await store.revoke_session("sess", NOW)) == ["hash2", "sess"]
    assert await store.revoke_session("sess", NOW) == []
    assert await store.delete_dead_credentials(100.0) == 2
    assert [a.username for a in await store.all_accounts()] == ["Alice", "bob"]
    assert await store.delete_account(uid) and await store.account(uid) is None
    assert await store.credential_for_key("hash1", 0.0) is None


async def test_concurrent_signups_with_one_name_make_one_account(store: Store) -> None:
    results = await asyncio.gather(
        *(store.create_account("carol", f"c{i}@example.com", "h", NOW) for i in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, int) for r in results) == 1
    assert all(isinstance(r, DuplicateAccount) for r in results if not isinstance(r, int))


async def test_media_rows_expiry_sizes_and_pending_downloads(store: Store) -> None:
    for i, sha in enumerate(["aa", "aa", "bb"]):
        await store.insert_media(
            MediaRow(f"m{i}", 1 if i else None, sha, "image/png", 10 * (i + 1), None, "upload", 100.0 + i, 200.0 + i)
        )
    got = await store.get_media("m1")
    assert got == MediaRow("m1", 1, "aa", "image/png", 20, None, "upload", 101.0, 201.0)
    assert await store.media_total_bytes() == 50  # each file once: aa (20) + bb (30)
    assert [m.id for m in await store.expired_media(201.0)] == ["m0", "m1"]
    assert [m.id for m in await store.oldest_media(2)] == ["m0", "m1"]
    assert await store.delete_media("m0") is not None and await store.delete_media("m0") is None
    assert await store.media_sha_in_use("aa") and not await store.media_sha_in_use("cc")
    p = PendingMedia(TOKEN, "MSG1", 1, "image", "image/jpeg", None, "a.jpg", False, "sandbox", '{"k": 1}', 50.0)
    await store.save_pending_media(p)
    await store.save_pending_media(p)  # a second failure replaces the first
    assert await store.pending_media(TOKEN, "MSG1") == p
    assert await store.prune_pending_media(10.0) == 0
    await store.drop_pending_media(TOKEN, "MSG1")
    assert await store.pending_media(TOKEN, "MSG1") is None


async def _sent_new(
    store: Store, message: NewMessage, rows: list[NewDelivery] | None = None, react: tuple[str, str, str] | None = None
) -> bool:
    """Whether a sent message was new when its job committed."""
    new: bool = await settled(store.submit_sent(message, rows or [], react))
    return new


def _incoming(msg_id: str) -> NewMessage:
    return NewMessage(
        TOKEN, msg_id, CHAT, "in", "text", "yo", 10.0, "received", (("received", 10.0),), sender="60198765432"
    )


async def test_an_incoming_event_is_one_unit_of_work(store: Store) -> None:
    """Counters, the sender as a contact, the message and the outbox rows (those for new contacts
    computed from what the job found) commit together; a failing job leaves nothing behind."""
    d = device()
    await store.save_device(d)
    d.messages_received = 1

    def rows(new: list[object]) -> list[NewDelivery]:
        return [delivery(1)] + [delivery(2)] * len(new)

    new = await store.record_incoming(d, [("60198765432", "Bob")], NOW, _incoming("M1"), rows)
    assert [c.phone for c in new] == ["60198765432"]
    again = await store.record_incoming(d, [("60198765432", None)], NOW, _incoming("M2"), rows)
    assert again == []
    assert len(await store.list_deliveries(None, None, None, 10)) == 3
    assert [m.id for m in await store.list_messages(TOKEN, limit=10)] == ["M2", "M1"]
    got = await store.get_device(TOKEN)
    assert got is not None and got.messages_received == 1

    def boom(new: list[object]) -> list[NewDelivery]:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        await store.record_incoming(d, [("60100000000", "X")], NOW, _incoming("M3"), boom)
    assert await store.count_contacts(TOKEN) == 1 and await store.get_message(TOKEN, "M3") is None


async def test_receipts_history_actions_and_submitted_messages(store: Store) -> None:
    sent = NewMessage(TOKEN, "S1", CHAT, "out", "text", "hi", 10.0, "sent", (("pending", 9.0), ("sent", 10.0)), True)
    assert await _sent_new(store, sent, [delivery(1)]) is True
    assert await _sent_new(store, sent, [delivery(2)]) is False  # already stored: no rows either

    def describe(c: StatusChange) -> tuple[tuple[str, str], list[NewDelivery]]:
        return (c.id, c.status), [delivery(10)]

    changes, _ = await settled(store.submit_receipt(TOKEN, ["S1", "nope"], "delivered", 11.0, [delivery(3)], describe))
    assert changes == [("S1", "delivered")]
    assert await store.edit_message(TOKEN, "S1", "hi!", 12.0, [delivery(4)])
    assert await store.revoke_message(TOKEN, "S1", 13.0) and not await store.revoke_message(TOKEN, "S1", 14.0)
    row = await store.get_message(TOKEN, "S1", history=True)
    assert row is not None and (row.text, row.edited_at, row.revoked_at, row.status) == ("hi!", 12.0, 13.0, "delivered")
    assert [s for s, _ in row.history] == ["pending", "sent", "delivered"]
    new = await store.record_history(TOKEN, None, [("601", "A"), ("602", None)], NOW, lambda n: [delivery(5)])
    assert [c.phone for c in new] == ["601", "602"]
    assert await store.record_history(TOKEN, None, [("601", "A")], NOW, lambda n: [delivery(6)]) == []
    ids = sorted(r.webhook_id for r in await store.list_deliveries(None, None, None, 20))
    assert ids == ["wh_1", "wh_10", "wh_3", "wh_4", "wh_5"]
    assert await store.record_messages([_incoming("B1"), _incoming("B2"), _incoming("B1")]) == 2


async def test_reactions_and_media_update_the_stored_message(store: Store) -> None:
    await store.record_message(_incoming("R1"))
    assert await store.react_message(TOKEN, "R1", "601", "👍", False, NOW, [delivery(1)])
    assert await store.react_message(TOKEN, "R1", "601", "❤️", False, NOW)  # theirs replaced
    assert await store.react_message(TOKEN, "R1", None, "😀", True, NOW)
    assert not await store.react_message(TOKEN, "nope", "601", "👍", False, NOW)
    row = await store.get_message(TOKEN, "R1")
    assert row is not None and [(r["from"], r["emoji"]) for r in row.payload["reactions"]] == [
        ("601", "❤️"),
        (None, "😀"),
    ]
    assert await store.set_message_media(TOKEN, "R1", {"status": "ok", "id": "m1", "url": "https://x/signed"})
    row = await store.get_message(TOKEN, "R1")
    assert row is not None and row.payload["media"] == {"status": "ok", "id": "m1"}  # the link is signed on read
    mine = NewMessage(TOKEN, "S9", CHAT, "out", "reaction", None, 20.0, "sent", (), True, sender="60123456789")
    assert await _sent_new(store, mine, react=("R1", "🔥", NOW))
    row = await store.get_message(TOKEN, "R1")
    assert row is not None and ("60123456789", "🔥") in [(r["from"], r["emoji"]) for r in row.payload["reactions"]]


async def test_claims_take_due_rows_once_until_they_run_out_or_are_released(store: Store) -> None:
    await store.enqueue([delivery(i) for i in range(5)])  # due at 1000 + i
    a = await store.claim_deliveries("node-a", now=1002.0, until=1010.0, limit=2)
    assert [r.webhook_id for r in a] == ["wh_0", "wh_1"]
    b = await store.claim_deliveries("node-b", now=1002.0, until=1010.0, limit=10)
    assert [r.webhook_id for r in b] == ["wh_2"]  # wh_3, wh_4 are not due yet; wh_0, wh_1 are held
    await store.record_attempts([AttemptResult(a[0].id, "pending", 1, "HTTP 500", 1003.0, None)])  # claim ends
    again = await store.claim_deliveries("node-b", now=1004.0, until=1010.0, limit=10)
    assert [r.webhook_id for r in again] == ["wh_0", "wh_3", "wh_4"]
    assert await store.claim_deliveries("node-b", now=1009.0, until=1020.0, limit=10) == []
    late = await store.claim_deliveries("node-c", now=1010.0, until=1020.0, limit=10)  # every claim ran out
    assert [r.webhook_id for r in late] == ["wh_0", "wh_1", "wh_2", "wh_3", "wh_4"]
    assert await store.release_claims("node-c") == 5
    assert len(await store.claim_deliveries("node-a", now=1011.0, until=1020.0, limit=10)) == 5


def _sent(msg_id: str, chat: str = CHAT, ts: float = 20.0) -> NewMessage:
    return NewMessage(TOKEN, msg_id, chat, "out", "text", msg_id, ts, "sent", (("pending", ts), ("sent", ts)), True)


async def test_sends_queued_together_share_one_job_and_move_each_chat_once(store: Store) -> None:
    """Sends queued one after another are one job: each answered at its index (a repeat is not new
    and stores no outbox rows), each chat left at its last message, as one move per send would."""
    other = "60111111111@s.whatsapp.net"
    await store.record_message(_incoming("IN1"))  # the chat had an unread incoming message
    queued = [
        store.submit_sent(_sent("S1"), [delivery(1)]),
        store.submit_sent(_sent("S2", other, 21.0)),
        store.submit_sent(_sent("S3", ts=22.0), [delivery(3)]),
        store.submit_sent(_sent("S1"), [delivery(4)]),  # already queued: not new
    ]
    assert len({id(f) for f, _ in queued}) == 1 and [i for _, i in queued] == [0, 1, 2, 3]
    results = await queued[0][0]
    assert results == [True, True, True, False]
    chats = {c.jid: c for c in await store.list_chats(TOKEN, limit=10)}
    s3, s2 = await store.get_message(TOKEN, "S3"), await store.get_message(TOKEN, "S2")
    assert s3 is not None and s2 is not None
    assert (chats[CHAT].last_seq, chats[CHAT].last_at, chats[CHAT].unread) == (s3.seq, 22.0, 1)
    assert (chats[other].last_seq, chats[other].last_at, chats[other].unread) == (s2.seq, 21.0, 0)
    assert sorted(r.webhook_id for r in await store.list_deliveries(None, None, None, 10)) == ["wh_1", "wh_3"]
    row = await store.get_message(TOKEN, "S1", history=True)
    assert row is not None and [s for s, _ in row.history] == ["pending", "sent"]


async def test_a_receipt_queued_before_a_send_does_not_see_its_message(store: Store) -> None:
    """Sends and receipts queued one after another are one job, applied as if in turn: a receipt
    queued before a send does not move the message that send stores (not stored yet, in queue order)."""
    first, i = store.submit_sent(_sent("S1"))
    receipt = store.submit_receipt(TOKEN, ["S1", "S2"], "delivered", 30.0, [], lambda c: (c.id, []))
    second, j = store.submit_sent(_sent("S2", ts=21.0))
    assert second is first and receipt[0] is first and (i, receipt[1], j) == (0, 1, 2)
    assert (await first)[0] and (await second)[2]
    changes, _ = await settled(receipt)
    assert changes == ["S1"]  # S2 was not stored yet when the receipt was queued
    s2 = await store.get_message(TOKEN, "S2", history=True)
    assert s2 is not None and s2.status == "sent" and [s for s, _ in s2.history] == ["pending", "sent"]
    late = await settled(store.submit_receipt(TOKEN, ["S2"], "delivered", 31.0, [], lambda c: (c.id, [])))
    assert late[0] == ["S2"]


async def test_another_job_between_keeps_the_queue_order(store: Store) -> None:
    """An item never joins a job queued before another kind of job: that one would run too late for it."""
    first, _ = store.submit_sent(_sent("S1"))
    between = store.db.submit(lambda conn: conn.execute("SELECT 1").fetchall())
    second, index = store.submit_sent(_sent("S2"))
    assert second is not first and index == 0
    assert (await first) == [True] and (await between) and (await second) == [True]


async def test_sends_arriving_after_a_commit_took_the_job_start_a_new_one(store: Store) -> None:
    first, _ = store.submit_sent(_sent("S1"))
    await first  # taken and committed
    second, index = store.submit_sent(_sent("S2"))
    assert second is not first and index == 0 and (await second) == [True]


async def test_a_jobs_outbox_rows_are_stored_in_queue_order(store: Store) -> None:
    """Sends and receipts queued together store their outbox rows last, in the order they were queued:
    a receipt's own rows, then those of each status it moved; items with none leave no gap."""

    def describe(c: StatusChange) -> tuple[str, list[NewDelivery]]:
        return c.id, [delivery(2)]

    first, _ = store.submit_sent(_sent("S1"), [delivery(1)])
    store.submit_sent(_sent("S0"))  # no rows
    store.submit_receipt(TOKEN, ["S1"], "delivered", 30.0, [delivery(5)], describe)
    store.submit_sent(_sent("S2"), [delivery(3)])
    assert await first == [True, True, ([("S1")], []), True]
    rows = await store.list_deliveries(None, None, None, 10)
    assert [r.webhook_id for r in reversed(rows)] == ["wh_1", "wh_5", "wh_2", "wh_3"]  # newest first

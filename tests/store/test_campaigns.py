"""Campaigns in the store (gateway/store/campaigns.py), on every engine: a recipient's way from
``pending`` through ``sending`` to ``read`` with the campaign's counters in step, the status rules,
the reads the service and the API make."""

from __future__ import annotations

from gateway.store import Store
from gateway.store.campaigns import (
    CampaignRow,
    NewRecipient,
    apply_receipts_sync,
    created_sync,
    fetch_campaign_sync,
    insert_campaign_sync,
    insert_recipients_sync,
    mark_done_sync,
    mark_sending_sync,
    mark_sent_sync,
    set_status_sync,
    unmark_sending_sync,
)
from tests.support.constants import TOKEN

T0 = 1_800_000_000.0


def campaign(cid: str = "cmp_a", owner: int | None = None, created: float = T0, status: str = "running") -> CampaignRow:
    return CampaignRow(
        id=cid, owner_id=owner, token=TOKEN, name="spring", message='{"text":"Hi {{name}}"}',
        pace='{"perMinute":60}', validate=True, status=status, error=None, total=5, pending=3, sent=0, delivered=0,
        read=0, failed=0, skipped=2, created_at=created, start_at=None, started_at=created, finished_at=None,
    )  # fmt: skip


RECIPIENTS: list[NewRecipient] = [
    (1, "60198765432", "Aisyah", '{"city":"Ipoh"}', "pending", None),
    (2, "12345", None, None, "skipped", "invalid_phone"),
    (3, "60171222333", "Ben", None, "pending", None),
    (4, "60198765432", None, None, "skipped", "duplicate"),
    (5, "60123400001", None, None, "pending", None),
]


async def make(store: Store, row: CampaignRow | None = None) -> CampaignRow:
    c = row or campaign()
    async with store.transaction():
        await store.db.run(lambda conn: insert_campaign_sync(conn, c))
        await store.db.run(lambda conn: insert_recipients_sync(conn, c.id, TOKEN, RECIPIENTS))
    return c


async def counts(store: Store, cid: str = "cmp_a") -> tuple[int, ...]:
    c = await store.get_campaign(cid)
    assert c is not None
    return (c.total, c.pending, c.sent, c.delivered, c.read, c.failed, c.skipped)


async def test_a_campaign_round_trips_with_its_types(store: Store) -> None:
    c = await make(store)
    got = await store.get_campaign(c.id)
    assert got == c
    assert got is not None and got.validate is True and isinstance(got.created_at, float)
    assert await store.get_campaign("cmp_none") is None
    assert await store.db.run(lambda conn: fetch_campaign_sync(conn, c.id)) == c


async def test_the_next_recipients_are_pending_ones_in_order_an_interrupted_one_first(store: Store) -> None:
    c = await make(store)
    assert [r.seq for r in await store.next_recipients(c.id, 10)] == [1, 3, 5]
    await store.db.run(lambda conn: mark_sending_sync(conn, c.id, 3, "MSG3", T0 + 1))
    nxt = await store.next_recipients(c.id, 2)
    assert [(r.seq, r.status, r.message_id) for r in nxt] == [(3, "sending", "MSG3"), (1, "pending", None)]
    assert (nxt[1].phone, nxt[1].name, nxt[1].vars) == ("60198765432", "Aisyah", '{"city":"Ipoh"}')
    await store.db.run(lambda conn: unmark_sending_sync(conn, c.id, 3))
    assert [(r.seq, r.message_id) for r in await store.next_recipients(c.id, 10)] == [(1, None), (3, None), (5, None)]


async def test_sent_failed_and_skipped_move_the_counters_once(store: Store) -> None:
    c = await make(store)
    await store.db.run(lambda conn: mark_sending_sync(conn, c.id, 1, "MSG1", T0 + 1))
    assert await store.db.run(lambda conn: mark_sent_sync(conn, c.id, 1, "MSG1", T0 + 2))
    assert not await store.db.run(lambda conn: mark_sent_sync(conn, c.id, 1, "MSG1", T0 + 3))  # once only
    assert await store.db.run(lambda conn: mark_done_sync(conn, c.id, 3, "failed", "boom", T0 + 4))
    assert await store.db.run(lambda conn: mark_done_sync(conn, c.id, 5, "skipped", "not_on_whatsapp", T0 + 5))
    assert not await store.db.run(lambda conn: mark_done_sync(conn, c.id, 5, "failed", "again", T0 + 6))
    assert await counts(store) == (5, 0, 1, 0, 0, 1, 3)
    assert await store.next_recipients(c.id, 10) == []
    assert await store.sent_since(c.id, T0 + 2) == 1
    assert await store.sent_since(c.id, T0 + 2.5) == 0


async def test_receipts_move_recipients_forward_only_and_count_a_sending_one_as_sent(store: Store) -> None:
    c = await make(store)
    await store.db.run(lambda conn: mark_sending_sync(conn, c.id, 1, "MSG1", T0))
    await store.db.run(lambda conn: mark_sent_sync(conn, c.id, 1, "MSG1", T0))
    await store.db.run(lambda conn: mark_sending_sync(conn, c.id, 3, "MSG3", T0))  # then the gateway died

    touched = await store.db.run(lambda conn: apply_receipts_sync(conn, TOKEN, ("MSG1", "MSG3"), "delivered", T0 + 1))
    assert touched == {c.id}
    assert await counts(store) == (5, 1, 2, 2, 0, 0, 2)
    await store.db.run(lambda conn: apply_receipts_sync(conn, TOKEN, ("MSG1",), "played", T0 + 2))
    back = await store.db.run(lambda conn: apply_receipts_sync(conn, TOKEN, ("MSG1",), "delivered", T0 + 3))
    assert back == set()  # never backwards
    assert await store.db.run(lambda conn: apply_receipts_sync(conn, TOKEN, ("MSG1",), "sent", T0 + 3)) == set()
    assert await store.db.run(lambda conn: apply_receipts_sync(conn, "601", ("MSG3",), "read", T0 + 3)) == set()
    assert await counts(store) == (5, 1, 2, 2, 1, 0, 2)
    # A late "sent" record after the receipt changes nothing.
    assert not await store.db.run(lambda conn: mark_sent_sync(conn, c.id, 3, "MSG3", T0 + 4))
    rows = await store.list_recipients(c.id, None, 10, 0)
    assert [(r[0], r[3], r[5]) for r in rows] == [
        (1, "read", "MSG1"), (2, "skipped", None), (3, "delivered", "MSG3"), (4, "skipped", None), (5, "pending", None),
    ]  # fmt: skip
    assert rows[2][6] == T0 + 1  # sent_at filled from the receipt


async def test_status_changes_only_from_the_allowed_ones_and_stamp_the_times(store: Store) -> None:
    c = await make(store, campaign(status="scheduled"))
    await store.db.execute("UPDATE campaigns SET started_at = NULL WHERE id = ?", (c.id,))
    assert await store.db.run(lambda conn: set_status_sync(conn, c.id, "running", T0 + 10, None, ("scheduled",)))
    assert not await store.db.run(lambda conn: set_status_sync(conn, c.id, "running", T0 + 20, None, ("scheduled",)))
    assert await store.db.run(lambda conn: set_status_sync(conn, c.id, "paused", T0 + 30))
    assert await store.db.run(lambda conn: set_status_sync(conn, c.id, "running", T0 + 40, None, ("paused",)))
    got = await store.get_campaign(c.id)
    assert got is not None and (got.status, got.started_at, got.finished_at) == ("running", T0 + 10, None)
    assert await store.db.run(lambda conn: set_status_sync(conn, c.id, "failed", T0 + 50, "the device was deleted"))
    assert not await store.db.run(lambda conn: set_status_sync(conn, c.id, "cancelled", T0 + 60))
    got = await store.get_campaign(c.id)
    assert got is not None and (got.status, got.error, got.finished_at) == ("failed", "the device was deleted", T0 + 50)
    assert await store.active_campaigns() == []


async def test_listing_is_newest_first_per_owner_and_active_ones_oldest_first(store: Store) -> None:
    await make(store, campaign("cmp_1", owner=7, created=T0))
    await make(store, campaign("cmp_2", owner=8, created=T0 + 1, status="paused"))
    await make(store, campaign("cmp_3", owner=7, created=T0 + 2, status="completed"))
    assert [c.id for c in await store.list_campaigns(7, False, 10)] == ["cmp_3", "cmp_1"]
    assert [c.id for c in await store.list_campaigns(None, True, 2)] == ["cmp_3", "cmp_2"]
    assert await store.list_campaigns(9, False, 10) == []
    assert [c.id for c in await store.active_campaigns()] == ["cmp_1", "cmp_2"]


async def test_recipients_read_in_pages_and_streamed_by_status_group(store: Store) -> None:
    c = await make(store)
    await store.db.run(lambda conn: mark_sending_sync(conn, c.id, 1, "MSG1", T0))
    await store.db.run(lambda conn: mark_sent_sync(conn, c.id, 1, "MSG1", T0))
    await store.db.run(lambda conn: apply_receipts_sync(conn, TOKEN, ("MSG1",), "delivered", T0 + 1))
    await store.db.run(lambda conn: mark_sending_sync(conn, c.id, 3, "MSG3", T0 + 2))
    page = await store.list_recipients(c.id, None, 2, 0)
    assert [r[0] for r in page] == [1, 2]
    assert [r[0] for r in await store.list_recipients(c.id, None, 2, page[-1][0])] == [3, 4]
    assert [r[0] for r in await store.list_recipients(c.id, "sent", 10, 0)] == [1]  # sent includes delivered
    assert [r[0] for r in await store.list_recipients(c.id, "pending", 10, 0)] == [3, 5]  # sending is pending

    async def streamed(status: str | None) -> list[list[object]]:
        return [list(r) for batch in [b async for b in store.iter_recipient_tuples(c.id, status)] for r in batch]

    every = await streamed(None)
    assert [r[0] for r in every] == [r[1] for r in RECIPIENTS]
    assert every[0][2:5] == ["delivered", None, "MSG1"]
    assert [r[3] for r in await streamed("skipped")] == ["invalid_phone", "duplicate"]


async def test_a_hundred_thousand_recipients_insert_in_chunks_in_one_transaction(store: Store) -> None:
    c = campaign("cmp_big")
    rows: list[NewRecipient] = [(i, f"6012{i:07d}", None, None, "pending", None) for i in range(1, 100_001)]
    async with store.transaction():
        await store.db.run(lambda conn: insert_campaign_sync(conn, c))
        for i in range(0, len(rows), 20_000):
            chunk = rows[i : i + 20_000]
            await store.db.run(lambda conn, chunk=chunk: insert_recipients_sync(conn, c.id, TOKEN, chunk))  # type: ignore[misc]
    r = await store.db.fetchone("SELECT COUNT(*), MAX(seq) FROM campaign_recipients WHERE campaign_id = ?", (c.id,))
    assert r is not None and (int(r[0]), int(r[1])) == (100_000, 100_000)


async def test_a_campaign_being_created_is_listed_nowhere_until_created_and_dropped_if_never(store: Store) -> None:
    await make(store, campaign("cmp_new", status="creating"))
    await make(store, campaign("cmp_dead", status="creating"))
    assert await store.list_campaigns(None, True, 10) == [] and await store.active_campaigns() == []
    done = campaign("cmp_new", status="running")
    await store.db.run(lambda conn: created_sync(conn, done))
    assert [c.id for c in await store.list_campaigns(None, True, 10)] == ["cmp_new"]
    assert await counts(store, "cmp_new") == (5, 3, 0, 0, 0, 0, 2)
    assert await store.drop_unfinished_creates() == 1
    assert await store.get_campaign("cmp_dead") is None
    assert await store.next_recipients("cmp_dead", 10) == []
    assert [r.seq for r in await store.next_recipients("cmp_new", 10)] == [1, 3, 5]

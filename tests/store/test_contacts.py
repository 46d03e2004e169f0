"""Contacts in the store (gateway/store/contacts.py), on every engine: the upsert's rules, owners."""

from __future__ import annotations

from gateway.store import Store
from tests.support.constants import TOKEN

ALI, SITI = "60171222333", "60127654321"


async def test_upsert_keeps_known_names_first_source_and_moves_last_seen(store: Store) -> None:
    """A blank name never replaces a known one, a new name does, source and firstSeen stay, lastSeen grows."""
    new = await store.upsert_contacts(TOKEN, None, [(ALI, "Ali")], "history", "2026-01-01T00:00:00.000Z")
    assert [c.phone for c in new] == [ALI]
    assert await store.upsert_contacts(TOKEN, None, [(ALI, "  ")], "message", "2026-01-02T00:00:00.000Z") == []
    await store.upsert_contacts(TOKEN, None, [(ALI, None)], "message", "2026-01-03T00:00:00.000Z")
    (row,) = await store.list_contacts(TOKEN, 10, 0)
    assert (row.name, row.source, row.first_seen, row.last_seen) == (
        "Ali",
        "history",
        "2026-01-01T00:00:00.000Z",
        "2026-01-03T00:00:00.000Z",
    )
    await store.upsert_contacts(TOKEN, None, [(ALI, "Ali Baba")], "message", "2026-01-02T12:00:00.000Z")
    (row,) = await store.list_contacts(TOKEN, 10, 0)
    assert (row.name, row.last_seen) == ("Ali Baba", "2026-01-03T00:00:00.000Z")  # last_seen never goes back


async def test_a_big_history_batch_reports_only_new_contacts(store: Store) -> None:
    """20,000 contacts in one batch (with repeats) → exactly the unseen ones are new, names merged."""
    await store.upsert_contacts(TOKEN, None, [("60120000000", "Known")], "message", "t0")
    batch = [(f"6012{i:07d}", f"N{i}") for i in range(20_000)]
    batch.append(("60120000005", ""))  # a repeat with a blank name keeps N5
    new = await store.upsert_contacts(TOKEN, None, batch, "history", "t1")
    assert len(new) == 19_999 and "60120000000" not in {c.phone for c in new}
    assert await store.count_contacts(TOKEN) == 20_000
    rows = {c.phone: c for c in await store.list_contacts(TOKEN, 1000, 0)}
    assert rows["60120000000"].source == "message" and rows["60120000000"].name == "N0"
    assert rows["60120000005"].name == "N5"


async def test_contacts_are_per_owner(store: Store) -> None:
    """Another owner of a reused token does not see, and takes over, the old owner's rows."""
    await store.upsert_contacts(TOKEN, 1, [(ALI, "Ali"), (SITI, "Siti")], "message", "t1")
    assert await store.count_contacts(TOKEN, 2) == 0 and not await store.has_contacts(TOKEN, 2)
    new = await store.upsert_contacts(TOKEN, 2, [(ALI, None)], "history", "t2")
    assert [c.phone for c in new] == [ALI]
    assert [(c.phone, c.name, c.source) for c in await store.list_contacts(TOKEN, 10, 0, 2)] == [(ALI, None, "history")]
    assert [c.phone for c in await store.list_contacts(TOKEN, 10, 0, 1)] == [SITI]
    assert await store.count_contacts(TOKEN) == 2  # the admin sees both


async def test_export_iterators_page_every_row_or_a_window(store: Store) -> None:
    await store.upsert_contacts(TOKEN, 1, [(f"6012{i:07d}", f"N{i}") for i in range(25)], "history", "t1")
    batches = [b async for b in store.iter_contacts(TOKEN, None, 0, 1, batch=10)]
    assert [len(b) for b in batches] == [10, 10, 5]
    window = [r async for b in store.iter_contact_tuples(TOKEN, 5, 20, 1) for r in b]
    assert [r[0] for r in window] == [f"6012{i:07d}" for i in range(20, 25)]
    assert [b async for b in store.iter_contacts(TOKEN, None, 0, 2)] == []  # another owner's view
    assert await store.delete_contacts(TOKEN) == 25 and not await store.has_contacts(TOKEN)

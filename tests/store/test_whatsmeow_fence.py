"""The fence at whatsmeow's own tables (CONTRACT §14: stale-owner writes refused), on the real PostgreSQL
with whatsmeow's real schema (made by neonize's upgrade, as at a node's start).

whatsmeow writes over its own connections, which each node names ``whatsmeow <node id>``. A trigger on every
per-device table refuses such a session's writes to a device whose lease its node does not hold; sessions of
no node (operators, import-sqlite, a single gateway without a cluster) and devices the registry does not know
yet (being paired) pass.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gateway.devices.sessions import upgrade_shared_sessions
from gateway.drivers.neonize.sessions import session_dsn, upgrade_schema
from gateway.store import DeviceRow, Store
from gateway.store.whatsmeow import FENCE_TRIGGER, fenced_columns
from tests.support.whatsmeow import device_row, insert_into_postgres

ALICE = "60111111111:5@s.whatsapp.net"
BOB = "60122222222:9@s.whatsapp.net"
TOKEN = "60111111111"
TTL_S = 30.0
PER_DEVICE = {
    "whatsmeow_device",
    "whatsmeow_identity_keys",
    "whatsmeow_pre_keys",
    "whatsmeow_sessions",
    "whatsmeow_sender_keys",
    "whatsmeow_app_state_sync_keys",
    "whatsmeow_app_state_version",
    "whatsmeow_app_state_mutation_macs",
    "whatsmeow_contacts",
    "whatsmeow_chat_settings",
    "whatsmeow_message_secrets",
    "whatsmeow_privacy_tokens",
}


@pytest.fixture
async def store(pg_migrated: str, tmp_path: Path) -> AsyncIterator[Store]:
    """The store of a node that has started: gateway migrated, whatsmeow upgraded and fenced, Alice paired
    (her JID in the registry), nodes ``n0`` and ``n1`` live, ``n0`` holding Alice's lease."""
    s = await Store.open(tmp_path / "unused", pg_migrated)
    await upgrade_shared_sessions(s, functools.partial(upgrade_schema, session_dsn(pg_migrated)))
    await insert_into_postgres(pg_migrated, ALICE, "Alice")
    await s.save_device(DeviceRow(TOKEN, "connected", "t", "t", jid=ALICE))
    for node in ("n0", "n1"):
        await s.node_beat(node, TTL_S, 5)
    assert [h.node for h in await s.acquire_leases("n0", [TOKEN], TTL_S, 5)] == ["n0"]
    yield s
    await s.close()


async def _session(url: str, name: str | None) -> asyncpg.Connection:
    """A connection as whatsmeow's of a node (``name`` = its application_name), or of nobody's."""
    return await asyncpg.connect(url, server_settings={"application_name": name} if name is not None else {})


async def _write_contact(conn: asyncpg.Connection, our_jid: str, name: str) -> None:
    await conn.execute(
        "INSERT INTO whatsmeow_contacts (our_jid, their_jid, first_name, full_name, push_name, business_name)"
        " VALUES ($1, '60199999999@s.whatsapp.net', $2, $2, '', '')"
        " ON CONFLICT (our_jid, their_jid) DO UPDATE SET full_name = EXCLUDED.full_name",
        our_jid,
        name,
    )


async def test_every_per_device_table_is_fenced_once(store: Store, pg_migrated: str) -> None:
    again = await store.install_whatsmeow_fence()  # the next node's start: nothing added twice
    assert set(again) >= PER_DEVICE
    assert not {"whatsmeow_version", "whatsmeow_lid_map"} & set(again)  # no one device's rows
    conn = await asyncpg.connect(pg_migrated)
    try:
        rows = await conn.fetch(
            "SELECT c.relname, count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid"
            " WHERE g.tgname = $1 GROUP BY 1",
            FENCE_TRIGGER,
        )
    finally:
        await conn.close()
    assert {r[0]: r[1] for r in rows} == dict.fromkeys(again, 1)


def test_the_jid_column_of_each_table_follows_whatsmeows_foreign_keys() -> None:
    tables = {
        "whatsmeow_device": ["jid", "push_name"],
        "whatsmeow_contacts": ["our_jid", "their_jid"],
        "whatsmeow_pre_keys": ["jid", "key_id"],
        "whatsmeow_app_state_version": ["jid", "name"],
        "whatsmeow_app_state_mutation_macs": ["jid", "name", "version"],
        "whatsmeow_lid_map": ["lid", "pn"],
    }
    keys = [  # listed child first: the closure does not depend on the order
        ("whatsmeow_app_state_mutation_macs", ["jid", "name"], "whatsmeow_app_state_version", ["jid", "name"]),
        ("whatsmeow_app_state_version", ["jid"], "whatsmeow_device", ["jid"]),
        ("whatsmeow_pre_keys", ["jid"], "whatsmeow_device", ["jid"]),
        ("whatsmeow_contacts", ["our_jid"], "whatsmeow_device", ["jid"]),
    ]
    assert fenced_columns(tables, keys) == {
        "whatsmeow_device": "jid",
        "whatsmeow_contacts": "our_jid",
        "whatsmeow_pre_keys": "jid",
        "whatsmeow_app_state_version": "jid",
        "whatsmeow_app_state_mutation_macs": "jid",
    }


async def test_a_node_without_the_lease_is_refused_and_the_holder_and_others_pass(
    store: Store, pg_migrated: str
) -> None:
    stale, holder, nobody = (
        await _session(pg_migrated, "whatsmeow n1"),
        await _session(pg_migrated, "whatsmeow n0"),
        await _session(pg_migrated, None),
    )
    try:
        refused = "wa-gateway fence: node n1 does not hold the lease of WhatsApp device " + ALICE
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=refused):
            await _write_contact(stale, ALICE, "from n1")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="wa-gateway fence"):
            await stale.execute("UPDATE whatsmeow_device SET push_name = 'n1' WHERE jid = $1", ALICE)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="wa-gateway fence"):
            await stale.execute("DELETE FROM whatsmeow_device WHERE jid = $1", ALICE)  # nor through the cascade
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="wa-gateway fence"):
            await stale.execute(
                "INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES ($1, 9, $2, false)",
                ALICE,
                os.urandom(32),
            )

        await _write_contact(holder, ALICE, "from n0")  # the lease holder writes
        await holder.execute("UPDATE whatsmeow_device SET push_name = 'n0' WHERE jid = $1", ALICE)
        await _write_contact(nobody, ALICE, "from an operator")  # a session of no node: passes
        # a device the registry does not know yet (being paired on n1): its session is written
        bob = device_row(BOB, "Bob")
        await stale.execute(
            f"INSERT INTO whatsmeow_device ({','.join(bob)}) VALUES ({','.join(f'${i + 1}' for i in range(len(bob)))})",
            *bob.values(),
        )
        await _write_contact(stale, BOB, "pairing on n1")

        assert await nobody.fetchval("SELECT push_name FROM whatsmeow_device WHERE jid = $1", ALICE) == "n0"
        contacts = {r[0]: r[1] for r in await nobody.fetch("SELECT our_jid, full_name FROM whatsmeow_contacts")}
        assert contacts == {ALICE: "from an operator", BOB: "pairing on n1"}
    finally:
        for conn in (stale, holder, nobody):
            await conn.close()


async def test_an_expired_lease_fences_its_holder_too_and_the_new_holder_writes(store: Store, pg_migrated: str) -> None:
    """n0 froze past its lease; n1 took the device: n0's late write is refused, n1's passes."""
    admin = await _session(pg_migrated, None)
    old, new = await _session(pg_migrated, "whatsmeow n0"), await _session(pg_migrated, "whatsmeow n1")
    try:
        await admin.execute("UPDATE device_leases SET expires_at = now() - interval '1 second'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="node n0 does not hold"):
            await _write_contact(old, ALICE, "late")  # expired, not yet taken: refused already
        assert [h.node for h in await store.acquire_leases("n1", [TOKEN], TTL_S, 5)] == ["n1"]
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="node n0 does not hold"):
            await _write_contact(old, ALICE, "stale")
        await _write_contact(new, ALICE, "n1's")
        assert await admin.fetchval("SELECT full_name FROM whatsmeow_contacts WHERE our_jid = $1", ALICE) == "n1's"
    finally:
        for conn in (admin, old, new):
            await conn.close()


async def test_a_gateway_outside_a_cluster_and_a_long_node_id_are_judged_right(store: Store, pg_migrated: str) -> None:
    """A single gateway on PostgreSQL (no cluster: its name matches no node) writes freely; a node id long
    enough to be cut to PostgreSQL's 63 bytes of application_name is still recognized, as holder and not."""
    single = await _session(pg_migrated, "whatsmeow host-1a2b3c")
    try:
        await _write_contact(single, ALICE, "single node")
    finally:
        await single.close()
    long_id = "node-" + "x" * 59  # 64 characters: NODE_ID's longest
    await store.node_beat(long_id, TTL_S, 5)
    cut = await _session(pg_migrated, f"whatsmeow {long_id}")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="wa-gateway fence"):
            await _write_contact(cut, ALICE, "not the holder")
        await store.release_leases("n0", {TOKEN: await _fence(pg_migrated)}, 5)
        assert [h.node for h in await store.acquire_leases(long_id, [TOKEN], TTL_S, 5)] == [long_id]
        await _write_contact(cut, ALICE, "the holder")
    finally:
        await cut.close()


async def _fence(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT fence FROM device_leases WHERE token = $1", TOKEN))
    finally:
        await conn.close()

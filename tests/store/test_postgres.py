"""What is PostgreSQL's own: the SQL translation, and surviving dropped connections."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from gateway.store import DeviceRow, NewDelivery, Store
from gateway.store.postgres import translate

NOW = "2026-01-01T00:00:00.000Z"


def test_translation_of_the_sqlite_spellings() -> None:
    q = translate("SELECT a FROM t INDEXED BY t_x WHERE owner_id IS ? AND +status = 'x?' AND b IS NOT ? AND c IS NULL")
    assert q.sql == (
        "SELECT a FROM t WHERE owner_id IS NOT DISTINCT FROM $1 AND status = 'x?' AND b IS DISTINCT FROM $2 AND c IS NULL"
    )
    assert q.rows and not q.serial
    q = translate("INSERT OR REPLACE INTO devices (token, name, status) VALUES (?,?,?)")
    assert q.sql == (
        "INSERT INTO devices (token, name, status) VALUES ($1,$2,$3)"
        " ON CONFLICT (token) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status"
    )
    q = translate("INSERT OR IGNORE INTO message_status VALUES (?,?,?)")
    assert q.sql == "INSERT INTO message_status VALUES ($1,$2,$3) ON CONFLICT DO NOTHING" and not q.rows
    q = translate("INSERT INTO outbox (a) VALUES (?)")
    assert (q.sql, q.rows, q.serial) == ("INSERT INTO outbox (a) VALUES ($1) RETURNING id", True, True)
    assert translate("INSERT INTO outbox (a) VALUES (?)", many=True).sql == "INSERT INTO outbox (a) VALUES ($1)"
    assert translate("SELECT 1 FROM accounts WHERE username = ? COLLATE NOCASE").sql == (
        "SELECT 1 FROM accounts WHERE lower(username) = lower($1)"
    )
    assert translate("BEGIN IMMEDIATE").sql == "BEGIN"
    assert translate("UPDATE c SET n = n + ? WHERE id = ?").sql == "UPDATE c SET n = n + $1 WHERE id = $2"


async def test_the_store_survives_the_server_dropping_its_connections(tmp_path: Path, pg_database: str) -> None:
    """Every connection of the store cut (as by a restart or a failover): the next write and read succeed."""
    store = await Store.open(tmp_path, pg_database)
    try:
        await store.save_device(DeviceRow("601", "connected", NOW, NOW))
        assert await store.get_device("601") is not None
        admin = await asyncpg.connect(pg_database)
        try:
            cut = await admin.fetchval(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert cut >= 2  # the writer and the pool's reader
        await store.save_device(DeviceRow("602", "connected", NOW, NOW))
        assert [d.token for d in await store.all_devices()] == ["601", "602"]
    finally:
        await store.close()


async def test_nodes_claiming_one_outbox_never_take_a_row_twice(tmp_path: Path, pg_database: str) -> None:
    """Three stores on one database (three nodes) claim 600 deliveries at once: each exactly once."""
    nodes = [await Store.open(tmp_path / f"n{i}", pg_database) for i in range(3)]
    try:
        rows = [
            NewDelivery(f"wh_{i}", "message.received", "601", None, "http://127.0.0.1:9/", b"{}", False, 1.0)
            for i in range(600)
        ]
        await nodes[0].enqueue(rows)

        async def drain(i: int) -> list[int]:
            taken: list[int] = []
            while batch := await nodes[i].claim_deliveries(f"node-{i}", now=2.0, until=100.0, limit=7):
                taken += [r.id for r in batch]
            return taken

        claimed = await asyncio.gather(*(drain(i) for i in range(3)))
        every = [row_id for taken in claimed for row_id in taken]
        assert len(every) == 600 and len(set(every)) == 600
    finally:
        for node in nodes:
            await node.close()

"""Both engines have the same schema: every table and column of SQLite's migrations has its
PostgreSQL twin, of the matching kind; PostgreSQL migrations run once, under the advisory lock,
and refuse a database newer than the code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from gateway.store import Store
from gateway.store.pg_schema import PG_MIGRATIONS, PG_ONLY_TABLES, SchemaError, migrate
from gateway.store.schema import MIGRATIONS

# SQLite's declared type → the PostgreSQL types it may become
KINDS = {
    "INTEGER": {"bigint", "integer"},
    "REAL": {"double precision"},
    "TEXT": {"text"},
    "BLOB": {"bytea"},
}


async def _sqlite_columns(tmp_path: Path) -> dict[str, dict[str, str]]:
    store = await Store.open(tmp_path)
    try:
        tables = await store.db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return {
            t[0]: {c["name"]: c["type"].upper() for c in await store.db.fetchall(f"PRAGMA table_info({t[0]})")}
            for t in tables
        }
    finally:
        await store.close()


async def test_every_table_and_column_exists_on_both_engines(tmp_path: Path, pg_database: str) -> None:
    assert len(PG_MIGRATIONS) == len(MIGRATIONS), "gateway/store/pg_schema.py lacks the twin of a migration"
    lite = await _sqlite_columns(tmp_path)
    await migrate(pg_database)
    conn = await asyncpg.connect(pg_database)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name <> 'gateway_schema'"
        )
    finally:
        await conn.close()
    pg: dict[str, dict[str, str]] = {}
    for r in rows:
        pg.setdefault(r["table_name"], {})[r["column_name"]] = r["data_type"]
    # The cluster's tables (nodes, leases, the sandbox's shared WhatsApp) are PostgreSQL's alone, and only they.
    assert PG_ONLY_TABLES.isdisjoint(lite)
    assert sorted(pg) == sorted(set(lite) | PG_ONLY_TABLES)
    for table, columns in lite.items():  # every shared table: the same columns, of the matching kinds
        assert sorted(pg[table]) == sorted(columns), table
        for column, kind in columns.items():
            assert pg[table][column] in KINDS[kind], (table, column, kind, pg[table][column])


async def test_concurrent_migrations_run_once_under_the_lock(pg_database: str) -> None:
    """Nodes starting together: one migrates, the others wait and find nothing to do."""
    results = await asyncio.gather(*(migrate(pg_database) for _ in range(4)))
    assert sorted(results) == [(0, len(PG_MIGRATIONS))] + [(len(PG_MIGRATIONS), len(PG_MIGRATIONS))] * 3
    conn = await asyncpg.connect(pg_database)
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM gateway_schema ORDER BY version")]
        assert versions == list(range(1, len(PG_MIGRATIONS) + 1))
        await conn.execute("INSERT INTO gateway_schema VALUES ($1)", len(PG_MIGRATIONS) + 1)
    finally:
        await conn.close()
    with pytest.raises(SchemaError, match="newer than this gateway"):
        await migrate(pg_database)

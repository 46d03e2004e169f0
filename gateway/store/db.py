"""One SQLite database file: a writer connection, a reader, and transactions.

Every write goes through the writer under one asyncio lock, so a
``transaction()`` is never interleaved with another task's statements. Reads
use a second connection (WAL lets it run beside the writer) so long exports
never hold up writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import aiosqlite

from gateway.store.schema import MIGRATIONS

_in_tx: ContextVar[bool] = ContextVar("in_tx", default=False)


class Db:
    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Db:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path)
        await writer.execute("PRAGMA journal_mode=WAL")
        await _migrate(writer)
        reader = await _connect(path)
        return cls(path, writer, reader)

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Run the block's writes as one transaction (re-entrant within a task)."""
        if _in_tx.get():
            yield
            return
        async with self._lock:
            token = _in_tx.set(True)
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                await self._writer.execute("COMMIT")
            finally:
                _in_tx.reset(token)

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        """Run one write; returns the affected row count (lastrowid for inserts via ``insert``)."""
        async with self.transaction():
            cur = await self._writer.execute(sql, tuple(args))
            return cur.rowcount

    async def insert(self, sql: str, args: Iterable[Any] = ()) -> int:
        async with self.transaction():
            cur = await self._writer.execute(sql, tuple(args))
            return int(cur.lastrowid or 0)

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        async with self.transaction():
            await self._writer.executemany(sql, [tuple(r) for r in rows])

    async def fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        conn = self._writer if _in_tx.get() else self._reader
        # One trip to the connection's thread instead of three (execute, fetch, close).
        return list(await conn.execute_fetchall(sql, tuple(args)))

    async def fetchone(self, sql: str, args: Iterable[Any] = ()) -> aiosqlite.Row | None:
        conn = self._writer if _in_tx.get() else self._reader
        async with conn.execute(sql, tuple(args)) as cur:
            return await cur.fetchone()

    async def iterate(self, sql: str, args: Iterable[Any] = (), batch: int = 1000) -> AsyncIterator[list[Any]]:
        """Yield rows in batches from the reader, holding only one batch in memory."""
        async with self._reader.execute(sql, tuple(args)) as cur:
            while True:
                rows = await cur.fetchmany(batch)
                if not rows:
                    return
                yield list(rows)

    async def writable(self) -> bool:
        try:
            async with self.transaction():
                await self._writer.execute("CREATE TEMP TABLE IF NOT EXISTS _probe(x)")
            return True
        except Exception:
            return False


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=5000")
    return conn


async def _migrate(conn: aiosqlite.Connection) -> None:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")

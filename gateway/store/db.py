"""The store's database: a writer connection, readers, and transactions.

:class:`Db` holds what both engines share — the writer, group commit,
transactions; :class:`SqliteDb` (one file, the default) and
:class:`gateway.store.postgres.PostgresDb` (``DATABASE_URL``) add how they read
and how their schema is migrated.

Every write goes through the writer (:class:`~gateway.store.writer.Writer`, a
connection on a thread of its own) under one asyncio lock, so a
``transaction()`` is never interleaved with another task's statements. Reads
use other connections (SQLite: aiosqlite, WAL lets it run beside the writer;
PostgreSQL: an asyncpg pool) so long exports never hold up writes.

The hot path (the event pumps of every device, stats saves) uses :meth:`Db.run`
instead: a plain function over the writer's connection (a unit of work,
:class:`~gateway.store.conn.Conn`), executed in the
writer's thread. Jobs that arrive while a commit is under way are grouped
into the next transaction (group commit), each in its own savepoint, so a
thousand devices' events cost a handful of thread hops and commits rather
than several each.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from gateway.store.conn import Conn
from gateway.store.schema import MIGRATIONS
from gateway.store.writer import Writer, connect_sync

_in_tx: ContextVar[bool] = ContextVar("in_tx", default=False)
T = TypeVar("T")
Job = Callable[[Conn], Any]
# Items (sends, receipts, jobs) queued for the group commit before :meth:`Db.room` makes callers wait,
# and how far the backlog must fall before they go on: under a load the writer cannot keep up with,
# sends slow down to its pace instead of the queue (and the process's memory) growing without bound.
HIGH_WATER = 50_000
LOW_WATER = 25_000


class Db:
    """The engine-neutral part: the writer, group commit, transactions (see the module's text)."""

    engine = "sqlite"  # or "postgres": for the few queries that differ

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._lock = asyncio.Lock()
        self._jobs: list[tuple[Job, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.high_water, self.low_water = HIGH_WATER, LOW_WATER
        self.backlog = 0  # items queued or being committed
        self._drained: asyncio.Event | None = None  # set when the backlog falls to low_water

    async def room(self) -> None:
        """Return at once unless the backlog is at ``high_water``; then once it has fallen to ``low_water``."""
        if self.backlog < self.high_water:
            return
        if self._drained is None:
            self._drained = asyncio.Event()
        await self._drained.wait()

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.wait({self._flusher}, timeout=5)
        await self._close_readers()
        await self._writer.close()

    # -- what each engine provides ------------------------------------------------------

    async def _close_readers(self) -> None:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def advisory_lock(self, key: int) -> AsyncIterator[None]:
        """Work no other process of this database may do at the same time. One process owns a SQLite
        file (``DATA_DIR`` is not shared), so there it holds nothing; PostgreSQL takes a real lock."""
        yield

    async def _read(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        """Rows of a query, outside any transaction (on a reader, never the writer)."""
        raise NotImplementedError

    def iterate(self, sql: str, args: Iterable[Any] = (), batch: int = 1000) -> AsyncIterator[list[Any]]:
        """Yield rows in batches, holding only one batch in memory (a connection of its own)."""
        raise NotImplementedError

    async def direct(self, sql: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """One PostgreSQL statement (``$n`` placeholders) in a transaction of its own, beside the group
        commit, never queued behind it: the cluster's leases and heartbeats (which must not wait for a
        busy writer). Cluster mode only."""
        raise NotImplementedError("the cluster's tables exist on PostgreSQL only")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Run the block's writes as one transaction (re-entrant within a task)."""
        if _in_tx.get():
            yield
            return
        async with self._lock:
            token = _in_tx.set(True)
            await self._writer.call(_execute, "BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._writer.call(_execute, "ROLLBACK")
                raise
            else:
                await self._writer.call(_execute, "COMMIT")
            finally:
                _in_tx.reset(token)

    async def run(self, job: Callable[[Conn], T]) -> T:
        """Run ``job(conn)`` atomically in the writer's thread, group-committed with others.

        The job must only touch the database (it runs off the event loop). Its
        result (or exception) comes back once its transaction has committed.
        """
        if _in_tx.get():
            # Already inside transaction(): join it (the flusher would wait for our own lock).
            return await self._writer.call(job)
        return await self.submit(job)

    def submit(self, job: Callable[[Conn], T]) -> asyncio.Future[T]:
        """Queue ``job`` for the next group commit without waiting for it; its future settles on commit.

        Jobs run in the order they were queued, so a job queued later (a receipt's
        status update) always sees what an earlier one (the sent message) wrote.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.append((job, future))
        self.backlog += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="db-group-commit")
        return future

    def submit_item(
        self, run: Callable[[Conn, list[Any]], list[Any]], item: Any
    ) -> tuple[asyncio.Future[list[Any]], int]:
        """Queue ``item`` for ``run(conn, items)``, one job for every item queued one after another
        with nothing else between them: the future (settled on commit with ``run``'s list, one result
        per item) and this item's index in it. Sends come one per request; as one job each they cost
        a closure, a future and a call apiece on both threads. Queue order is kept: an item never
        joins a job that another job was queued after, nor one a commit has taken."""
        jobs = self._jobs
        if jobs:
            last = jobs[-1][0]
            if isinstance(last, _Items) and last.run is run:
                last.items.append(item)
                self.backlog += 1
                return jobs[-1][1], len(last.items) - 1
        job = _Items(run, [item])
        return self.submit(job), 0

    async def _flush(self) -> None:
        while self._jobs:
            batch, self._jobs = self._jobs, []
            try:
                async with self._lock:
                    outcomes = await self._writer.call(_run_batch, [j for j, _ in batch])
            except Exception as exc:  # the commit itself failed: every job of the batch failed
                outcomes = [(False, exc)] * len(batch)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            self.backlog -= sum(len(job.items) if isinstance(job, _Items) else 1 for job, _ in batch)
            drained = self._drained
            if drained is not None and self.backlog <= self.low_water:
                self._drained = None
                drained.set()

    # One write is one job of the group commit: one trip to the writer's thread, atomic on its
    # own (its savepoint), or part of the enclosing transaction() when there is one.

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        """Run one write; returns the affected row count (lastrowid for inserts via ``insert``)."""
        return await self.run(functools.partial(_rowcount, sql=sql, args=tuple(args)))

    async def insert(self, sql: str, args: Iterable[Any] = ()) -> int:
        return await self.run(functools.partial(_lastrowid, sql=sql, args=tuple(args)))

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        await self.run(functools.partial(_executemany, sql=sql, rows=[tuple(r) for r in rows]))

    async def fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        """Rows (by index or column name) of a query."""
        if _in_tx.get():  # inside transaction(): see its own uncommitted writes
            return await self._writer.call(_fetchall, sql, tuple(args))
        return await self._read(sql, tuple(args))

    async def fetchone(self, sql: str, args: Iterable[Any] = ()) -> Any | None:
        rows = await self.fetchall(sql, args)  # fetched whole: no statement left open on the shared reader
        return rows[0] if rows else None

    async def writable(self) -> bool:
        try:
            async with self.transaction():
                await self._writer.call(_execute, "CREATE TEMP TABLE IF NOT EXISTS _probe(x INTEGER)")
            return True
        except Exception:
            return False


class SqliteDb(Db):
    """One SQLite file (the single-node default): the writer, plus an aiosqlite reader."""

    def __init__(self, path: Path, writer: Writer, reader: aiosqlite.Connection) -> None:
        super().__init__(writer)
        self.path = path
        self._reader = reader

    @classmethod
    async def open(cls, path: Path) -> SqliteDb:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await Writer.open(functools.partial(connect_sync, path))
        await writer.call(_set_up)
        reader = await _connect(path)
        return cls(path, writer, reader)

    async def _close_readers(self) -> None:
        await self._reader.close()

    async def _read(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        # One trip to the connection's thread instead of three (execute, fetch, close).
        return list(await self._reader.execute_fetchall(sql, args))

    async def iterate(self, sql: str, args: Iterable[Any] = (), batch: int = 1000) -> AsyncIterator[list[Any]]:
        """A long scan keeps its statement (and so a read snapshot) open, so it gets a connection of
        its own: the shared reader never serves stale data to other tasks meanwhile."""
        conn = await _connect(self.path)
        try:
            async with conn.execute(sql, tuple(args)) as cur:
                while True:
                    rows = await cur.fetchmany(batch)
                    if not rows:
                        return
                    yield list(rows)
        finally:
            await conn.close()


class _Items:
    """A job of :meth:`Db.submit_item`: one call of ``run`` over the items queued together."""

    __slots__ = ("items", "run")

    def __init__(self, run: Callable[[Conn, list[Any]], list[Any]], items: list[Any]) -> None:
        self.run = run
        self.items = items

    def __call__(self, conn: Conn) -> list[Any]:
        return self.run(conn, self.items)


def _run_batch(conn: Conn, jobs: list[Job]) -> list[tuple[bool, Any]]:
    """One transaction for the batch, in which a failing job rolls back alone.

    First every job without savepoints; only if one fails is all of it rolled back and the batch run
    again with a savepoint per job (jobs only touch the database and return what they found, so
    running one twice is harmless). A savepoint per job costs a round trip on PostgreSQL and, on
    SQLite, doubled the cost of storing a sent message (48 → 24 µs of CPU, ``SAVEPOINT`` and
    ``RELEASE`` around three small statements); failures are rare.
    """
    done = _run_all(conn, jobs)
    if done is not None:
        return done
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for job in jobs:
            conn.execute("SAVEPOINT job")
            try:
                outcomes.append((True, job(conn)))
            except Exception as exc:
                conn.execute("ROLLBACK TO job")
                outcomes.append((False, exc))
            conn.execute("RELEASE job")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def _run_all(conn: Conn, jobs: list[Job]) -> list[tuple[bool, Any]] | None:
    """Every job in one transaction, no savepoints; None (all rolled back) as soon as one fails."""
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for job in jobs:
            try:
                outcomes.append((True, job(conn)))
            except Exception:
                conn.execute("ROLLBACK")
                return None
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=5000")
    return conn


# -- work for the writer's thread ---------------------------------------------------------


def _set_up(conn: Conn) -> None:
    """WAL (so the reader runs beside the writer), then the migrations this file has not had yet."""
    assert isinstance(conn, sqlite3.Connection)  # the SQLite writer's
    conn.execute("PRAGMA journal_mode=WAL")
    row = conn.execute("PRAGMA user_version").fetchone()
    version = int(row[0]) if row else 0
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")


def _execute(conn: Conn, sql: str) -> None:
    conn.execute(sql)


def _rowcount(conn: Conn, sql: str, args: tuple[Any, ...]) -> int:
    return conn.execute(sql, args).rowcount


def _lastrowid(conn: Conn, sql: str, args: tuple[Any, ...]) -> int:
    return int(conn.execute(sql, args).lastrowid or 0)


def _executemany(conn: Conn, sql: str, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(sql, rows)


def _fetchall(conn: Conn, sql: str, args: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, args).fetchall()

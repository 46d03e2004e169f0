"""The store on PostgreSQL (``DATABASE_URL``), through asyncpg.

The same :class:`~gateway.store.db.Db` as SQLite's — one writer on a thread of
its own, group commit (each job in its own savepoint), transactions — with:

- the writer's connection a :class:`PgConn`: a synchronous face over one asyncpg
  connection, driven by an event loop private to the writer's thread, so every
  unit of work (``*_sync`` over a :class:`~gateway.store.conn.Conn`) runs
  unchanged on both engines;
- reads on an asyncpg pool on the application's loop, and long scans on a
  server-side cursor of their own;
- the schema from :mod:`gateway.store.pg_schema`, migrated under an advisory
  lock before anything else touches the database.

The queries are written once, in the SQL both engines take; :func:`translate`
turns them into PostgreSQL's (``$n`` placeholders and the few SQLite spellings
listed there), once per distinct statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from gateway.store.db import Db
from gateway.store.pg_schema import migrate
from gateway.store.writer import Writer

T = TypeVar("T")

# Tables whose key the database assigns: an INSERT into them returns it (``lastrowid``).
_SERIAL = {"outbox": "id", "messages": "seq", "accounts": "id", "api_keys": "id"}
# The conflict target of ``INSERT OR REPLACE`` (SQLite replaces on any unique key; these tables have one).
_KEYS = {
    "devices": ("token",),
    "contacts": ("token", "phone"),
    "idempotency": ("scope", "key"),
    "media_pending": ("token", "message_id"),
}
_POOL_SIZE = 10


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    rows: bool  # returns rows (a SELECT, or RETURNING)
    serial: bool  # an INSERT returning the new row's key


@functools.lru_cache(maxsize=4096)
def translate(sql: str, many: bool = False) -> Statement:
    """The PostgreSQL form of a store statement.

    ``?`` → ``$n``; ``BEGIN IMMEDIATE`` → ``BEGIN``; ``INDEXED BY`` and ``+column`` hints dropped;
    ``x = ? COLLATE NOCASE`` → ``lower(x) = lower(?)``; ``json_group_array`` / ``json_array`` →
    ``json_agg`` / ``json_build_array`` (an aggregate comes back as JSON text, or NULL over no rows); ``a IS b`` / ``a IS NOT b``
    (SQLite's null-safe comparisons) → ``IS [NOT] DISTINCT FROM``; ``INSERT OR IGNORE``
    → ``ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` → an upsert on the table's key;
    an INSERT into a table with a generated key returns it (unless ``many``).
    """
    s = sql.strip()
    if s.upper() == "BEGIN IMMEDIATE":
        return Statement("BEGIN", False, False)
    s = re.sub(r"\s+INDEXED BY \w+", "", s)
    s = re.sub(r"\b(WHERE|AND|OR)\s+\+(?=\w)", r"\1 ", s)  # SQLite's "+column" (use no index on it)
    s = re.sub(r"([\w.]+)\s*=\s*\?\s*COLLATE NOCASE", r"lower(\1) = lower(?)", s)
    s = s.replace("json_group_array(", "json_agg(").replace("json_array(", "json_build_array(")
    s = re.sub(r"\bIS NOT (?!NULL\b|DISTINCT\b|TRUE\b|FALSE\b)", "IS DISTINCT FROM ", s)
    s = re.sub(r"\bIS (?!NULL\b|NOT\b|DISTINCT\b|TRUE\b|FALSE\b)", "IS NOT DISTINCT FROM ", s)
    insert = re.match(r"INSERT\s+(OR\s+(IGNORE|REPLACE)\s+)?INTO\s+(\w+)\s*(\(([^)]*)\))?", s, re.I)
    serial = False
    if insert is not None:
        mode, table, columns = (insert.group(2) or "").upper(), insert.group(3), insert.group(5)
        s = "INSERT INTO " + s[insert.start(3) :]
        if mode == "IGNORE":
            s += " ON CONFLICT DO NOTHING"
        elif mode == "REPLACE":
            keys = _KEYS[table]
            cols = [c.strip() for c in (columns or "").split(",")]
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in keys)
            s += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
        if table in _SERIAL and not many and "RETURNING" not in s.upper():
            s += f" RETURNING {_SERIAL[table]}"
            serial = True
    head = s.lstrip("( \n").split(None, 1)[0].upper() if s else ""
    rows = head in ("SELECT", "WITH", "VALUES") or re.search(r"\bRETURNING\b", s, re.I) is not None
    return Statement(_numbered(s), rows, serial)


def _numbered(sql: str) -> str:
    """``?`` → ``$1``, ``$2``, … outside quoted strings."""
    out: list[str] = []
    n = 0
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    return "".join(out)


def _count(status: str) -> int:
    """Rows a command touched, from its status tag (``UPDATE 3``, ``INSERT 0 1``)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


class PgCursor:
    """What a statement gave back, shaped like a sqlite3 cursor."""

    def __init__(self, rows: list[Any], rowcount: int, lastrowid: int | None) -> None:
        self._rows = rows
        self._next = 0
        self._rowcount = rowcount
        self._lastrowid = lastrowid

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._lastrowid

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rest, self._next = self._rows[self._next :], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConn:
    """One asyncpg connection used synchronously, on the thread that made it (the writer's).

    The thread owns a private event loop; each statement runs it until the
    statement's answer is in. A connection the server dropped while idle (a
    restart, a failover) is replaced at the next ``BEGIN``, before any work of
    the transaction is lost; a transaction under way when it drops fails.
    """

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, conn: asyncpg.Connection) -> None:
        self._url = url
        self._loop = loop
        self._conn = conn

    @classmethod
    def connect(cls, url: str) -> PgConn:
        loop = asyncio.new_event_loop()
        try:
            return cls(url, loop, loop.run_until_complete(_connect(url)))
        except BaseException:
            loop.close()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    @property
    def in_transaction(self) -> bool:
        return not self._conn.is_closed() and self._conn.is_in_transaction()

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PgCursor:
        if self._conn.is_closed():
            self._conn = self._run(_connect(self._url))
        q = translate(sql)
        if q.sql == "BEGIN":
            try:
                return PgCursor([], 0, self._run(self._conn.execute("BEGIN")) and None)
            except LOST:  # the server dropped us while idle (restart, failover, idle timeout): nothing
                # was done yet, so open a new connection and begin there
                self._conn = self._run(_connect(self._url))
                return PgCursor([], 0, self._run(self._conn.execute("BEGIN")) and None)
        if q.rows:
            rows = self._run(self._conn.fetch(q.sql, *parameters))
            return PgCursor(rows, len(rows), int(rows[-1][0]) if q.serial and rows else None)
        status = self._run(self._conn.execute(q.sql, *parameters))
        return PgCursor([], _count(status), None)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> PgCursor:
        rows = [tuple(p) for p in seq_of_parameters]
        if rows:
            self._run(self._conn.executemany(translate(sql, many=True).sql, rows))
        return PgCursor([], len(rows), None)

    def close(self) -> None:
        try:
            if not self._conn.is_closed():
                self._run(self._conn.close(timeout=2))
        finally:
            self._loop.close()


# What a connection that the server (or the network) dropped raises.
LOST = (asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError, asyncpg.InterfaceError, ConnectionError)


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url)


class PostgresDb(Db):
    """PostgreSQL: the writer (a :class:`PgConn`) plus an asyncpg pool for reads."""

    engine = "postgres"

    def __init__(self, url: str, writer: Writer, pool: asyncpg.Pool) -> None:
        super().__init__(writer)
        self.url = url
        self._pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresDb:
        await migrate(url)
        writer = await Writer.open(functools.partial(PgConn.connect, url))
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=_POOL_SIZE)
        except BaseException:
            await writer.close()
            raise
        return cls(url, writer, pool)

    async def _close_readers(self) -> None:
        await self._pool.close()

    async def _read(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        query = translate(sql).sql
        try:
            return list(await self._pool.fetch(query, *args))
        except LOST:  # a pooled connection the server dropped: the pool replaces it; read once more
            return list(await self._pool.fetch(query, *args))

    async def direct(self, sql: str, *args: Any, timeout: float | None = None) -> list[Any]:
        return list(await self._pool.fetch(sql, *args, timeout=timeout))

    @contextlib.asynccontextmanager
    async def advisory_lock(self, key: int) -> AsyncIterator[None]:
        """``pg_advisory_lock(key)`` on a pooled connection, held until the block ends (waits its turn)."""
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", key)

    async def iterate(self, sql: str, args: Iterable[Any] = (), batch: int = 1000) -> AsyncIterator[list[Any]]:
        """A server-side cursor, in a read-only transaction of its own connection."""
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            cursor = await conn.cursor(translate(sql).sql, *args)
            while rows := await cursor.fetch(batch):
                yield list(rows)

"""What a unit of work sees: a DB-API-like connection, SQLite's or PostgreSQL's.

Units of work (``*_sync`` functions, see :meth:`gateway.store.db.Db.run`) run on
the writer's thread over a :class:`Conn`: ``sqlite3.Connection`` itself, or
:class:`gateway.store.postgres.PgConn`, a synchronous face over one asyncpg
connection that takes the same SQL. Write that SQL so both engines accept it:
``?`` placeholders, ``ON CONFLICT`` upserts, no SQLite-only functions; the few
SQLite spellings the PostgreSQL side rewrites are listed in
:func:`gateway.store.postgres.translate`.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> int | None: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Cursor: ...

    def close(self) -> None: ...


def integrity_errors() -> tuple[type[Exception], ...]:
    """What a unique or foreign-key constraint refusing a write raises, on either engine (for an
    ``except``). asyncpg is loaded only by a PostgreSQL store (a single node never pays its RSS),
    so its class is included once it is loaded — before any of its connections can raise it."""
    pg = sys.modules.get("asyncpg")
    if pg is None:
        return (sqlite3.IntegrityError,)
    return (sqlite3.IntegrityError, pg.IntegrityConstraintViolationError)

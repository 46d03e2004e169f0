"""The writer connection on a thread of its own.

Store calls block (SQLite's, and the PostgreSQL store's synchronous face over
asyncpg, :mod:`gateway.store.postgres`), so the one connection that writes lives on a dedicated
daemon thread and the event loop hands it work: :meth:`Writer.call` queues
``fn(conn, *args)`` and awaits its result, which the thread posts back with
``call_soon_threadsafe``. One thread, one queue, calls in the order they were
made: the writer is never used from two threads, and a caller that gives up
(cancelled) never leaves the connection half-way through someone else's work.

This is the same shape as aiosqlite's connection thread, owned here because
the group commit (:meth:`gateway.store.db.Db.run`) needs to run a plain
function over the connection (:class:`~gateway.store.conn.Conn`), which aiosqlite keeps private.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from gateway.store.conn import Conn

P = ParamSpec("P")
T = TypeVar("T")

_Work = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


def connect_sync(path: Path) -> sqlite3.Connection:
    """A connection as the store wants it: autocommit (transactions are explicit), rows by name."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class Writer:
    """One connection and the thread that owns it (``connect`` runs on that thread)."""

    def __init__(self, connect: Callable[[], Conn]) -> None:
        self._connect = connect
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._closed = False

    @classmethod
    async def open(cls, connect: Callable[[], Conn]) -> Writer:
        """Start the thread; it opens the connection (connections stay on the thread that made them)."""
        writer = cls(connect)
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        threading.Thread(target=writer._serve, args=(opened,), name="db-writer", daemon=True).start()
        await opened
        return writer

    async def call(self, fn: Callable[Concatenate[Conn, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(conn, *args, **kwargs)`` on the writer's thread; its result or exception comes back here."""
        if self._closed:
            raise sqlite3.ProgrammingError("the store's writer is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, args, kwargs, future))
        return await future

    async def close(self) -> None:
        """Close the connection, then let the thread end (work queued before still runs first)."""
        if self._closed:
            return
        try:
            await self.call(self._close)
        finally:
            self._closed = True
            self._queue.put(None)

    # -- on the writer's thread -------------------------------------------------------

    @staticmethod
    def _close(conn: Conn) -> None:
        conn.close()

    def _serve(self, opened: asyncio.Future[None]) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._closed = True
            _post(opened.get_loop(), _fail, opened, exc)
            return
        _post(opened.get_loop(), _succeed, opened, None)
        while (work := self._queue.get()) is not None:
            fn, args, kwargs, future = work
            del work
            loop = future.get_loop()
            try:
                result = fn(conn, *args, **kwargs)
            except BaseException as exc:  # handed to the caller, never raised on this thread
                _post(loop, _fail, future, exc)
            else:
                _post(loop, _succeed, future, result)
                result = None
            del future, fn, args, kwargs


def _post(loop: asyncio.AbstractEventLoop, settle: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(settle, *args)


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # the caller may have been cancelled meanwhile
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)

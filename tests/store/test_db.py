"""The store's Db on every engine: group commit, savepoints per job, nested use, fresh reads during long
scans, the writer thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.store import Store
from gateway.store.conn import Conn
from gateway.store.db import Db, SqliteDb
from tests.support.poll import until


@pytest.fixture
async def db(store: Store) -> Db:
    await store.db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    return store.db


async def test_jobs_commit_together_and_fail_alone(db: Db) -> None:
    """Concurrent jobs share transactions; a failing job rolls back only its own writes."""
    import asyncio

    def put(k: str, v: int) -> int:
        def job(conn: Conn) -> int:
            conn.execute("INSERT INTO t VALUES (?, ?)", (k, v))
            if v < 0:
                raise ValueError("negative")
            return v

        return job  # type: ignore[return-value]

    results = await asyncio.gather(
        *(db.run(put(f"k{i}", i)) for i in range(50)), db.run(put("bad", -1)), return_exceptions=True
    )
    assert results[:50] == list(range(50))
    assert isinstance(results[50], ValueError)
    rows = await db.fetchall("SELECT k FROM t ORDER BY v")
    assert [r[0] for r in rows] == [f"k{i}" for i in range(50)]


async def test_run_inside_a_transaction_joins_it(db: Db) -> None:
    """db.run() inside transaction() neither deadlocks nor commits early: a rollback undoes it."""
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.run(lambda conn: conn.execute("INSERT INTO t VALUES ('x', 1)"))
            raise RuntimeError("undo")
    assert await db.fetchone("SELECT * FROM t WHERE k = 'x'") is None


async def test_reads_are_fresh_while_a_long_scan_is_open(db: Db) -> None:
    """A streaming scan in progress does not freeze other reads on an old snapshot."""
    await db.executemany("INSERT INTO t VALUES (?, ?)", [(f"r{i}", i) for i in range(3000)])
    scan = db.iterate("SELECT k FROM t ORDER BY v", batch=100)
    first = await scan.__anext__()
    assert len(first) == 100
    await db.execute("INSERT INTO t VALUES ('late', 99999)")
    assert await db.fetchone("SELECT v FROM t WHERE k = 'late'") is not None
    await scan.aclose()


async def test_a_cancelled_write_still_completes_and_the_writer_goes_on(db: Db) -> None:
    """A caller that gives up does not leave the writer's thread half-way: its job commits, later ones run."""
    import asyncio
    import threading

    release, running = threading.Event(), threading.Event()

    def slow(conn: Conn) -> None:
        running.set()
        release.wait(5)
        conn.execute("INSERT INTO t VALUES ('slow', 1)")

    task = asyncio.create_task(db.run(slow))
    await until(running.is_set, what="the writer running the job")
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.execute("INSERT INTO t VALUES ('next', 2)") == 1
    assert [r[0] for r in await db.fetchall("SELECT k FROM t ORDER BY v")] == ["slow", "next"]


async def test_the_writer_refuses_work_once_closed(tmp_path: Path) -> None:
    d = await SqliteDb.open(tmp_path / "closed.db")
    await d.close()
    with pytest.raises(sqlite3.ProgrammingError):
        await d.execute("CREATE TABLE x (y)")


async def test_writes_inside_a_transaction_are_read_back_before_commit(db: Db) -> None:
    """Reads inside transaction() go to the writer, so they see the block's own uncommitted writes."""
    async with db.transaction():
        await db.insert("INSERT INTO t VALUES ('tx', 7)")
        row = await db.fetchone("SELECT v FROM t WHERE k = 'tx'")
        assert row is not None and row["v"] == 7
        assert await db.fetchone("SELECT v FROM t WHERE k = 'missing'") is None


async def test_room_waits_while_the_backlog_is_at_high_water_until_it_falls_to_low(db: Db) -> None:
    """Items queued past ``high_water`` (the writer held up) make ``room()`` wait; it returns once the
    commits bring the backlog down to ``low_water``. Below high water it returns at once."""
    import asyncio
    import threading

    from gateway.store.db import _Items

    db.high_water, db.low_water = 6, 2
    await db.room()  # nothing queued: no wait
    gate = threading.Event()
    held = db.submit(lambda conn: gate.wait(10))  # the writer's thread waits here

    def count(conn: Conn, items: list[int]) -> list[int]:
        return items

    queued = [db.submit_item(count, i) for i in range(5)]
    assert db.backlog == 6 and isinstance(db._jobs[-1][0], _Items)
    waiting = asyncio.create_task(db.room())
    await until(lambda: db._drained is not None, 5, "room() at its wait")
    assert not waiting.done()
    gate.set()
    async with asyncio.timeout(10):
        await waiting
        assert await held is True and (await queued[0][0]) == [0, 1, 2, 3, 4]
    assert db.backlog == 0
    await db.room()

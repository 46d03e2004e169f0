"""The registry's Db: group commit, savepoints per job, nested use, fresh reads during long scans."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.store.db import Db


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    d = await Db.open(tmp_path / "gateway.db")
    await d.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    yield d
    await d.close()


async def test_jobs_commit_together_and_fail_alone(db: Db) -> None:
    """Concurrent jobs share transactions; a failing job rolls back only its own writes."""
    import asyncio

    def put(k: str, v: int) -> int:
        def job(conn: sqlite3.Connection) -> int:
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

"""The servers a cluster runs on (CONTRACT §14) are there for the tests, on any machine.

The first two tests use whatever ``postgres_url`` / ``nats_url`` found (the machine's own here); the last
starts throwaway ones even though the machine's are running, so the fresh-machine path — Debian's
binaries, started by the tests, never a skip — is exercised on every run, not only where it is needed.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import nats
import pytest
from nats.js.api import KeyValueConfig

from tests.support import services
from tests.support.net import HOST


async def _postgres_works(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE probe (k int PRIMARY KEY, v text)")
        await conn.execute("INSERT INTO probe VALUES (1, 'a') ON CONFLICT (k) DO UPDATE SET v = excluded.v")
        assert await conn.fetchval("SELECT v FROM probe WHERE k = 1") == "a"
        return int(await conn.fetchval("SHOW server_version_num"))
    finally:
        await conn.close()


async def _jetstream_works(url: str, bucket: str) -> None:
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        kv = await js.create_key_value(KeyValueConfig(bucket=bucket, history=1))
        revision = await kv.create("lease.dev1", b"node-a")
        with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
            await kv.create("lease.dev1", b"node-b")  # create-if-absent: a second holder is refused
        await kv.update("lease.dev1", b"node-a2", last=revision)  # compare-and-swap on the revision
        assert (await kv.get("lease.dev1")).value == b"node-a2"
        await js.delete_key_value(bucket)
    finally:
        await nc.close()


async def test_postgres_is_there_and_new_enough(pg_database: str) -> None:
    # idle_session_timeout (SCALE-OUT.md's fix for neonize's leaked connections) needs PostgreSQL 14+.
    assert await _postgres_works(pg_database) >= 140000


async def test_nats_has_jetstream(nats_url: str) -> None:
    await _jetstream_works(nats_url, "probe_services")


async def test_throwaway_servers_start_and_stop_here(tmp_path: Path) -> None:
    with services.throwaway_postgres() as pg_url, services.throwaway_nats(tmp_path / "nats") as bus:
        assert ":5432/" not in pg_url and not bus.endswith(":4222")
        await _postgres_works(pg_url)
        await _jetstream_works(bus, "probe_throwaway")
        pg_port, nats_port = int(pg_url.rsplit(":", 1)[1].split("/")[0]), int(bus.rsplit(":", 1)[1])
    assert not services.answers(HOST, pg_port) and not services.answers(HOST, nats_port)

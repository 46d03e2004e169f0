"""The fence at whatsmeow's tables: what the trigger costs each session write, and that it refuses a stale node.

CONTRACT §14 ("stale-owner writes refused"), README "Running a cluster". On a fresh PostgreSQL database the
gateway's schema is migrated, whatsmeow's made by neonize's own upgrade and fenced as at a node's start;
``--devices`` devices are registered with their JIDs, three nodes live, ``n0`` holding a third of the leases.
Then, inside PostgreSQL (a PL/pgSQL loop, so neither the client nor the network is timed), ``--rows``
single-row inserts into ``whatsmeow_contacts`` for one of n0's devices, per round and in turn: from
``whatsmeow n0`` (the lease holder: the fence's full path), from a session of no node (``psql``: its early
exit), and with the trigger disabled. Medians over ``--rounds``. Last, ``whatsmeow n1`` (no lease) writes
n0's device's session five ways (update, insert, delete): every one must be refused.

    python -m bench.fence [--rows 20000] [--rounds 5] [--devices 300]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
from pathlib import Path
from typing import Any

import asyncpg

from bench import report, servers
from bench.store import fresh_database
from tests.support import services
from tests.support.whatsmeow import insert_into_postgres

JID = "60100000000:1@s.whatsapp.net"  # n0's device the inserts write for

_LOOP = (
    """
CREATE OR REPLACE FUNCTION pg_temp.fence_bench(n int) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  FOR i IN 1..n LOOP
    INSERT INTO whatsmeow_contacts (our_jid, their_jid, first_name, full_name, push_name, business_name)
    VALUES ('"""
    + JID
    + """', 'bench' || i, 'x', 'x', '', '');
  END LOOP;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END $$
"""
)


async def _prepare(workdir: Path, url: str, devices: int) -> None:
    from gateway.devices.sessions import upgrade_shared_sessions
    from gateway.drivers.neonize.sessions import session_dsn, upgrade_schema
    from gateway.store import DeviceRow, Store

    store = await Store.open(workdir / "store", url)
    try:
        await upgrade_shared_sessions(store, functools.partial(upgrade_schema, session_dsn(url)))
        await insert_into_postgres(url, JID, "bench")
        tokens = [f"60100{i:06d}" for i in range(devices)]
        for i, token in enumerate(tokens):
            await store.save_device(DeviceRow(token, "connected", "t", "t", jid=f"{token[:5]}{i:06d}:1@s.whatsapp.net"))
        for node in ("n0", "n1", "n2"):
            await store.node_beat(node, 3600, 10)
        await store.acquire_leases("n0", tokens[: max(1, devices // 3)], 3600, 10)
    finally:
        await store.close()


async def _time(url: str, name: str, rows: int, trigger: bool) -> float:
    conn = await asyncpg.connect(url)  # unnamed: the clean-up is nobody's write
    try:
        await conn.execute("DELETE FROM whatsmeow_contacts WHERE their_jid LIKE 'bench%'")
        await conn.execute(f"ALTER TABLE whatsmeow_contacts {'ENABLE' if trigger else 'DISABLE'} TRIGGER gateway_fence")
        await conn.execute("SELECT set_config('application_name', $1, false)", name)
        await conn.execute(_LOOP)
        return float(await conn.fetchval("SELECT pg_temp.fence_bench($1)", rows))
    finally:
        await conn.close()


_STALE = [  # n1 (no lease) writes n0's device's session: every one must be refused
    "UPDATE whatsmeow_device SET push_name = 'stale' WHERE jid = $1",
    "INSERT INTO whatsmeow_contacts (our_jid, their_jid, first_name, full_name, push_name, business_name)"
    " VALUES ($1, 'stale@s.whatsapp.net', '', '', '', '')",
    "UPDATE whatsmeow_contacts SET full_name = 'stale' WHERE our_jid = $1",
    "INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES ($1, 424242, decode(repeat('00', 32), 'hex'), false)",
    "DELETE FROM whatsmeow_device WHERE jid = $1",
]


async def _stale_writes(url: str) -> tuple[int, int]:
    """(refused, tried) of :data:`_STALE` (the contacts hold the last round's row, so each statement writes)."""
    conn = await asyncpg.connect(url, server_settings={"application_name": "whatsmeow n1"})
    try:
        refused = 0
        for sql in _STALE:
            try:
                await conn.execute(sql, JID)
            except asyncpg.InsufficientPrivilegeError:
                refused += 1
        return refused, len(_STALE)
    finally:
        await conn.close()


def run(rows: int, rounds: int, devices: int) -> dict[str, Any]:
    with servers.workdir("fence") as wd, services.postgres() as server, fresh_database(server) as url:
        asyncio.run(_prepare(wd, url, devices))
        times: dict[str, list[float]] = {"holder": [], "no_node": [], "no_trigger": []}
        for _ in range(rounds):
            times["holder"].append(asyncio.run(_time(url, "whatsmeow n0", rows, True)))
            times["no_node"].append(asyncio.run(_time(url, "psql", rows, True)))
            times["no_trigger"].append(asyncio.run(_time(url, "whatsmeow n0", rows, False)))
        asyncio.run(_time(url, "psql", 1, True))  # the trigger back on
        refused, tried = asyncio.run(_stale_writes(url))
    median = {k: round(statistics.median(v), 1) for k, v in times.items()}
    overhead = round(median["holder"] - median["no_trigger"], 1)
    print(f"us per single-row insert (median of {rounds}): {median}; rounds: {times}", flush=True)
    return {
        "params": {"rows": rows, "rounds": rounds, "devices": devices},
        "us_per_insert": median,
        "rounds_us": {k: [round(x, 1) for x in v] for k, v in times.items()},
        "stale_writes": {"refused": refused, "tried": tried},
        "targets": {
            "fence_overhead_us_per_write_lease_holder": {
                "value": overhead,
                "target": "< 100",
                "verdict": report.verdict(overhead, 100),
            },
            "stale_node_writes_let_through": {
                "value": tried - refused,
                "target": "0",
                "verdict": report.verdict(tried - refused, 0.5) if tried else "MISS",
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--devices", type=int, default=300)
    args = parser.parse_args()
    out = run(args.rows, args.rounds, args.devices)
    report.write_result("fence", out)
    print(
        report.table(
            [(k, v["value"], v["target"], v["verdict"]) for k, v in out["targets"].items()],
            ("figure", "value", "target", "verdict"),
        )
    )


if __name__ == "__main__":
    main()

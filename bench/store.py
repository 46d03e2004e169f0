"""The store's hot path on both engines: incoming-message units of work per second, group-committed.

``--devices`` simulated pumps (one task per device, like gateway/devices/pump.py)
each store ``--events`` incoming messages one after another through
``Store.record_incoming`` — the device's counters, the sender as a contact, the
message, one webhook outbox row, in one job — so jobs from every device share
commits (group commit, a savepoint per job). The same load runs on SQLite (a
file in a temporary directory) and on PostgreSQL (a fresh database on the
machine's server at 127.0.0.1:5432, else a throwaway one, dropped after), and
once more with one device only (no grouping possible: a commit per event).

    python -m bench.store [--devices 200] [--events 25] [--engines sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from bench import report, servers
from gateway.store import DeviceRow, NewDelivery, Store
from gateway.store.messages import NewMessage
from tests.support import services

NOW = "2026-01-01T00:00:00.000Z"
# Group commit must pay off on each engine: grouped events/s over one device's (a commit per event).
TARGET_GAIN = 1.5


@contextlib.contextmanager
def database(engine: str) -> Iterator[str | None]:
    """None for SQLite; a fresh PostgreSQL database's URL (dropped afterwards)."""
    if engine == "sqlite":
        yield None
        return
    with services.postgres() as server, fresh_database(server) as url:
        yield url


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``server`` (a URL): its URL; dropped afterwards."""
    name = f"bench_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def load(data_dir: Path, url: str | None, n_devices: int, per_device: int) -> dict[str, Any]:
    store = await Store.open(data_dir, url)
    try:
        devices = [DeviceRow(f"6012{i:07d}", "connected", NOW, NOW) for i in range(n_devices)]
        for d in devices:
            await store.save_device(d)

        async def pump(d: DeviceRow) -> None:
            for n in range(per_device):
                sender = f"6019{n:07d}"
                msg = NewMessage(d.token, f"3A{n:018X}", f"{sender}@s.whatsapp.net", "in", "text", "hi", 1000.0 + n,
                                 "received", (("received", 1000.0 + n),), sender=sender)  # fmt: skip
                body = b'{"event":"message.received"}'
                row = NewDelivery(
                    f"msg_{n}", "message.received", d.token, None, "http://127.0.0.1:9/", body, False, 1.0
                )
                d.messages_received += 1
                await store.record_incoming(d, [(sender, "Customer")], NOW, msg, lambda new, r=row: [r])

        began = time.perf_counter()
        await asyncio.gather(*(pump(d) for d in devices))
        seconds = time.perf_counter() - began
        events = n_devices * per_device
        stored = len(await store.list_messages(devices[0].token, limit=per_device + 1))
        assert stored == per_device, f"{stored} of {per_device} messages stored"
        return {"events": events, "seconds": round(seconds, 2), "events_per_s": round(events / seconds)}
    finally:
        await store.close()


def run(
    n_devices: int = 200, per_device: int = 25, engines: tuple[str, ...] = ("sqlite", "postgres")
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for engine in engines:
        for label, devices, events in (("grouped", n_devices, per_device), ("one device", 1, per_device * 10)):
            with servers.workdir(f"store-{engine}") as wd, database(engine) as url:
                r = asyncio.run(load(wd / "data", url, devices, events))
            results[f"{engine} {label}"] = r
            print(f"  {engine:8} {label:10} {r['events']:6} events in {r['seconds']:6.2f} s: "
                  f"{r['events_per_s']:6} /s", flush=True)  # fmt: skip
    out: dict[str, Any] = {
        "method": f"{n_devices} concurrent device pumps x {per_device} incoming messages, each one "
        "Store.record_incoming job (counters + contact + message + 1 outbox row), group-committed; 'one device': "
        f"a single pump of {per_device * 10} (a commit per event). SQLite: a file in a temporary directory; "
        "PostgreSQL: a fresh database on 127.0.0.1",
        "results": results,
        "targets": {},
    }
    for engine in engines:
        gain = results[f"{engine} grouped"]["events_per_s"] / results[f"{engine} one device"]["events_per_s"]
        out["targets"][f"{engine}_group_commit_gain"] = {
            "value": round(gain, 2),
            "target": f">= {TARGET_GAIN}x",
            "verdict": report.verdict(gain, TARGET_GAIN, higher_is_better=True),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--events", type=int, default=25, help="incoming messages per device")
    ap.add_argument("--engines", default="sqlite,postgres")
    args = ap.parse_args()
    result = run(args.devices, args.events, tuple(e for e in args.engines.split(",") if e))
    for name, t in result["targets"].items():
        print(f"  {name}: {t['value']} (target {t['target']}) {t['verdict']}")
    print(f"wrote {report.write_result('store', result)}")


if __name__ == "__main__":
    main()

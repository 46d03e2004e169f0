"""The message store at scale: 1,000,000 messages across 100 devices (CONTRACT §12, issue 15).

Loads ``--messages`` messages for ``--devices`` devices straight into ``gateway.db``
through the store (``Store.record_messages`` in group-commit jobs of 5,000: each
message with its status history and its chat row, as the gateway itself writes
them; outgoing ones with pending → sent → delivered → read), measures the file,
then starts the gateway (``python -m gateway``, sandbox) as a subprocess and
times, from one keep-alive client on 127.0.0.1:

- ``GET /devices/{token}/messages?limit=50`` and the next page (its ``nextCursor``), p99 < 20 ms;
- ``GET /devices/{token}/chats?limit=50``, p99 < 50 ms (and its next page, by cursor, shown);
- the database on disk (file + WAL after the load), < 1 GB.

    python -m bench.messages [--devices 100] [--messages 1000000] [--requests 400]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: bench/ first on sys.path would shadow the stdlib `http`
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _here]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import random
import time
from typing import Any

import httpx

from bench import report, servers, stats
from gateway.store import DeviceRow, Store
from gateway.store.messages import NewMessage

BATCH = 5_000
CHATS_PER_DEVICE = 200
TEXTS = (
    "Hi, is the blue one still available?",
    "Yes! We have it in stock, RM 129.",
    "Can you deliver to Petaling Jaya tomorrow?",
    "Your order #A-10293 has been shipped 🚚",
    "Thanks, received with thanks 🙏",
    "Boleh saya dapatkan senarai harga?",
)


def tokens(n: int) -> list[str]:
    return [f"6012{i:07d}" for i in range(n)]


def _messages(token: str, start: int, count: int, t0: float) -> list[NewMessage]:
    out = []
    for i in range(start, start + count):
        chat = f"6019{(i % CHATS_PER_DEVICE):07d}@s.whatsapp.net"
        ts = t0 + i
        text = TEXTS[i % len(TEXTS)]
        if i % 2:
            history = (("pending", ts), ("sent", ts + 0.2), ("delivered", ts + 1), ("read", ts + 30))
            out.append(NewMessage(token, f"3EB0{i:016X}", chat, "out", "text", text, ts, "read", history, True, token))
        else:
            out.append(
                NewMessage(
                    token, f"3A{i:018X}", chat, "in", "text", text, ts, "received", (("received", ts),),
                    sender=chat.partition("@")[0], sender_name="Customer",
                )
            )  # fmt: skip
    return out


async def load(data_dir: Path, devices: list[str], per_device: int) -> float:
    began = time.perf_counter()
    store = await Store.open(data_dir)
    try:
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        for token in devices:
            await store.save_device(DeviceRow(token=token, status="disconnected", created_at=now, last_update=now))
        t0 = time.time() - per_device - 3600  # inside the retention window, in the past
        for token in devices:
            for start in range(0, per_device, BATCH):
                batch = _messages(token, start, min(BATCH, per_device - start), t0)
                await store.record_messages(batch)
    finally:
        await store.close()
    return time.perf_counter() - began


def disk_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("gateway.db*"))


def measure(server: servers.Server, devices: list[str], requests: int) -> dict[str, list[float]]:
    headers = {"X-API-Key": servers.API_KEY}
    rng = random.Random(15)
    first: list[float] = []
    second: list[float] = []
    chats: list[float] = []
    chats_next: list[float] = []
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        for token in devices[:5]:  # warm up: imports, query plans, page cache of a few devices
            client.get(f"/devices/{token}/messages?limit=50")
            client.get(f"/devices/{token}/chats?limit=50")
        for _ in range(requests):
            token = rng.choice(devices)
            began = time.perf_counter()
            r = client.get(f"/devices/{token}/messages", params={"limit": 50})
            first.append(time.perf_counter() - began)
            page = r.json()["data"]
            assert r.status_code == 200 and len(page["messages"]) == 50, r.text[:300]
            began = time.perf_counter()
            r = client.get(f"/devices/{token}/messages", params={"limit": 50, "cursor": page["nextCursor"]})
            second.append(time.perf_counter() - began)
            nxt = r.json()["data"]["messages"]
            assert r.status_code == 200 and len(nxt) == 50 and nxt[0]["id"] != page["messages"][-1]["id"]
            began = time.perf_counter()
            r = client.get(f"/devices/{token}/chats", params={"limit": 50})
            chats.append(time.perf_counter() - began)
            assert r.status_code == 200 and len(r.json()["data"]["chats"]) == 50, r.text[:300]
            began = time.perf_counter()
            r = client.get(f"/devices/{token}/chats", params={"limit": 50, "cursor": r.json()["data"]["nextCursor"]})
            chats_next.append(time.perf_counter() - began)
            assert r.status_code == 200 and len(r.json()["data"]["chats"]) == 50, r.text[:300]
    return {"first": first, "next": second, "chats": chats, "chats_next": chats_next}


def run(n_devices: int = 100, n_messages: int = 1_000_000, requests: int = 400) -> dict[str, Any]:
    devices = tokens(n_devices)
    per_device = n_messages // n_devices
    with servers.workdir("messages") as wd:
        data = wd / "data"
        load_s = asyncio.run(load(data, devices, per_device))
        size = disk_bytes(data)
        print(
            f"  loaded {per_device * n_devices:,} messages in {load_s:.1f} s; {size / 1e6:.1f} MB on disk", flush=True
        )
        with servers.running(servers.gateway(data)) as gw:
            timings = measure(gw, devices, requests)
    first, nxt, chats, chats_next = (stats.summarize_ms(timings[k]) for k in ("first", "next", "chats", "chats_next"))
    both = stats.summarize_ms(timings["first"] + timings["next"])
    print(f"  messages?limit=50 {first}\n  next page {nxt}\n  chats?limit=50 {chats}", flush=True)
    print(f"  chats next page {chats_next}", flush=True)
    mb = size / 1e6
    return {
        "method": f"{n_devices} devices x {per_device:,} messages ({CHATS_PER_DEVICE} chats each, half in, half out "
        "with 4 statuses) stored with Store.record_messages in group-commit jobs of 5,000; "
        "disk = gateway.db + WAL after the load; gateway as `python -m gateway` (sandbox); one httpx keep-alive "
        f"client on 127.0.0.1, {requests} rounds of (a random device's first page, its next page by cursor, "
        "its chats, its next chats page by cursor), after a warm-up of 5 devices",
        "devices": n_devices,
        "messages": per_device * n_devices,
        "load_seconds": round(load_s, 1),
        "disk_mb": round(mb, 1),
        "latency_ms": {
            "first_page": first,
            "next_page": nxt,
            "pages": both,
            "chats": chats,
            "chats_next_page": chats_next,
        },
        "targets": {
            "messages_page_p99_ms": {
                "value": both["p99"],
                "target": "< 20",
                "verdict": report.verdict(both["p99"], 20),
            },
            "chats_p99_ms": {"value": chats["p99"], "target": "< 50", "verdict": report.verdict(chats["p99"], 50)},
            "disk_mb": {"value": round(mb, 1), "target": "< 1000", "verdict": report.verdict(mb, 1000)},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    result = run(args.devices, args.messages, args.requests)
    for name, t in result["targets"].items():
        print(f"  {name}: {t['value']} (target {t['target']}) {t['verdict']}")
    print(f"wrote {report.write_result('messages', result)}")


if __name__ == "__main__":
    main()

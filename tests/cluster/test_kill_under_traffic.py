"""``kill -9`` of a node in the middle of traffic (CONTRACT §14, issue 17's fault list), on 3 real nodes:
sends and simulated incoming messages go through random live nodes, a WebSocket listener on every node,
and one node dies. Meanwhile sends answer only 200 or 503 (DEVICE_MOVING), every incoming message a node
acknowledged reaches the webhook receiver, duplicates stay within what the dead node had in flight, and
the survivors' listeners hear the moved devices again."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.cluster import Cluster, running
from tests.support.constants import API_KEY, OTHER
from tests.support.frames import Frames
from tests.support.poll import until
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

TOKENS = [f"6012400{i:04d}" for i in range(9)]
BEFORE = 40  # calls each traffic loop makes before the kill
AFTER = 40  # and after the moved devices are connected elsewhere
MAX_CALLS = 3000  # each loop's bound, whatever happens (one call at a time, each awaiting its answer)


async def test_kill_9_under_traffic_loses_nothing_acknowledged(
    tmp_path: Path, pg_migrated: str, nats_url: str, receiver: Receiver
) -> None:
    async with running(tmp_path, pg_migrated, nats_url, 3, WEBHOOK_URL=receiver.url) as cluster:
        await cluster.add_devices(TOKENS)
        spread = await cluster.settle(TOKENS)
        victim = cluster.ids.index(spread[TOKENS[0]])
        moved = [t for t, n in spread.items() if n == cluster.ids[victim]]
        survivors = [i for i in range(3) if i != victim]
        sockets = [await _listen(cluster, i) for i in range(3)]
        statuses: Counter[int] = Counter()
        acknowledged: list[str] = []
        stop = asyncio.Event()
        rng = random.Random(17)
        calls: Counter[str] = Counter()  # answered calls per loop

        async def sends() -> None:
            n = 0
            while not stop.is_set() and n < MAX_CALLS:
                code = await _through_a_live_node(
                    cluster, rng, "/messages", {"token": rng.choice(TOKENS), "to": OTHER, "text": f"s{n}"}
                )
                if code is not None:
                    statuses[code] += 1
                n += 1
                calls["sends"] += 1

        async def incoming() -> None:
            n = 0
            while not stop.is_set() and n < MAX_CALLS:
                text = f"in-{n}"
                token = rng.choice(TOKENS)
                code = await _through_a_live_node(
                    cluster, rng, f"/sandbox/devices/{token}/incoming", {"from": OTHER, "text": text}
                )
                if code == 200:
                    acknowledged.append(text)
                n += 1
                calls["incoming"] += 1

        traffic = [asyncio.create_task(sends()), asyncio.create_task(incoming())]
        try:
            await until(lambda: min(calls["sends"], calls["incoming"]) >= BEFORE, 30, "traffic before the kill")
            began = time.monotonic()
            cluster.nodes[victim].signal(signal.SIGKILL)
            survivor_ids = {cluster.ids[i] for i in survivors}
            await until(lambda: cluster.connected_on(moved, survivor_ids), 30, "moved devices connected elsewhere")
            assert time.monotonic() - began < 30
            base = dict(calls)
            await until(lambda: all(calls[k] - base[k] >= AFTER for k in ("sends", "incoming")), 30, "traffic after it")
        finally:
            stop.set()
            await asyncio.gather(*traffic)

        assert set(statuses) <= {200, 503}, statuses  # never a 500, never a 404 for a device that exists
        assert statuses[200] > 0 and acknowledged

        def received() -> Counter[str]:
            return Counter(h.json()["data"]["text"] for h in receiver.hits if h.json()["event"] == "message.received")

        await until(lambda: set(acknowledged) <= set(received()), 30, "every acknowledged message's webhook")
        twice = sum(n - 1 for n in received().values() if n > 1)
        assert twice <= 64, twice  # at most the dead node's deliveries in flight (WEBHOOK_CONCURRENCY)
        assert await cluster.doubles() == []

        for i in survivors:  # the moved devices are heard again on the survivors' sockets
            frames = sockets[i]
            await frames.wait(
                lambda _, seen=frames: {f["token"] for f in seen.frames if f["event"] == "message"} >= set(moved),
                timeout=20,
            )
        for frames in sockets:
            await frames.close()


async def _listen(cluster: Cluster, i: int) -> Frames:
    ws = await websockets.connect(f"ws://127.0.0.1:{cluster.nodes[i].port}/ws?apiKey={API_KEY}&events=message")
    frames = Frames(ws)
    await frames.event("connected")
    return frames


async def _through_a_live_node(cluster: Cluster, rng: random.Random, path: str, body: dict[str, str]) -> int | None:
    """POST through a random node still alive; None when the node died under the call."""
    live = [i for i in range(len(cluster.nodes)) if cluster.alive(i)]
    async with cluster.client(rng.choice(live)) as c:
        try:
            r = await c.post(path, json=body)
        except httpx.HTTPError:
            return None
    if r.status_code == 503:
        assert r.json()["error"]["code"] == "DEVICE_MOVING" and int(r.headers["Retry-After"]) >= 1, r.text
    return r.status_code

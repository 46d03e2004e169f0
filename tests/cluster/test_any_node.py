"""Any node answers any call, and streams every event (CONTRACT §14), on a 3-node cluster of real
processes: each device runs on one node, yet every node sends through it (files too), reads its state with
the same answer (over HTTP and the WebSocket), and gives its WebSocket listeners the device's events in
order."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.cluster import Cluster, running
from tests.support.constants import API_KEY, OTHER
from tests.support.frames import Frames
from tests.support.poll import until

pytestmark = pytest.mark.e2e

TOKENS = [f"6012300{i:04d}" for i in range(3)]


@pytest.fixture
async def cluster(tmp_path: Path, pg_database: str, nats_url: str) -> AsyncIterator[Cluster]:
    """Three nodes started together on an empty database: they apply the schema once between them (the
    other cluster tests start on ``pg_migrated``, a copy with the schema already applied)."""
    async with running(tmp_path, pg_database, nats_url, 3) as c:
        yield c


async def test_every_node_sends_reads_and_streams_every_device(cluster: Cluster) -> None:
    await cluster.add_devices(TOKENS)
    holders = await cluster.holders()
    assert set(holders) == set(TOKENS)
    sockets = []
    for node in cluster.nodes:
        ws = await websockets.connect(f"ws://127.0.0.1:{node.port}/ws?apiKey={API_KEY}&events=message")
        frames = Frames(ws)
        await frames.event("connected")
        sockets.append(frames)
    try:
        for i in range(len(cluster.nodes)):
            async with cluster.client(i) as c:
                for token in TOKENS:
                    r = await c.post("/messages", json={"token": token, "to": OTHER, "text": f"from n{i}"})
                    assert r.status_code == 200, (i, token, holders[token], r.text)
                    r = await c.get(f"/devices/{token}")
                    assert r.status_code == 200 and r.json()["data"]["status"] == "connected", r.text
                    for k in range(3):  # incoming messages simulated through any node, in order
                        r = await c.post(f"/sandbox/devices/{token}/incoming", json={"from": OTHER, "text": f"{i}-{k}"})
                        assert r.status_code == 200, r.text
        want = {t: [f"{i}-{k}" for i in range(3) for k in range(3)] for t in TOKENS}
        for frames in sockets:  # every node's listener: every device's messages, each device's in order
            await frames.wait(
                lambda _, seen=frames: sum(f["event"] == "message" for f in seen.frames) >= 27, timeout=20
            )
            got: dict[str, list[str]] = {}
            for f in frames.frames:
                if f["event"] == "message":
                    got.setdefault(f["token"], []).append(f["data"]["text"])
            assert got == want
        async with cluster.client(0) as c:
            r = await c.get(f"/sandbox/devices/{TOKENS[0]}/sent")
        assert sorted(m["text"] for m in r.json()["data"]["messages"]) == ["from n0", "from n1", "from n2"]
    finally:
        for frames in sockets:
            await frames.close()


async def test_every_node_sends_files_and_answers_socket_requests_for_every_device(cluster: Cluster) -> None:
    """Multipart sends and the WebSocket's ``get_state`` / ``get_qr`` through every node, for every device:
    the file reaches the device's WhatsApp intact (its SHA-256, as the sandbox received it), the frames are
    the device's own state."""
    await cluster.add_devices(TOKENS)
    holders = await cluster.holders()
    files = {i: os.urandom(1536 * 1024 + i) for i in range(len(cluster.nodes))}  # larger than a bus message
    for i in range(len(cluster.nodes)):
        frames = Frames(await websockets.connect(f"ws://127.0.0.1:{cluster.nodes[i].port}/ws?apiKey={API_KEY}"))
        try:
            await frames.event("connected")
            async with cluster.client(i) as c:
                for token in TOKENS:

                    async def send(token: str = token, i: int = i, c: httpx.AsyncClient = c) -> httpx.Response | None:
                        r = await c.post(
                            "/messages",
                            data={"token": token, "to": OTHER, "type": "document", "caption": f"n{i}"},
                            files={"file": (f"f{i}.bin", files[i], "application/octet-stream")},
                        )
                        # A client retries DEVICE_MOVING (§14): on a loaded host a node's 3 s test lease can
                        # lapse and the device move meanwhile. Nothing was sent then.
                        if r.status_code == 503 and r.json()["error"]["code"] == "DEVICE_MOVING":
                            await cluster.settle([token])  # until it has one owner again, then once more
                            return None
                        return r

                    r = await until(send, 30, f"a send through n{i} for {token}")
                    assert r.status_code == 200, (i, token, holders[token], r.text)
                    for action, event in (("get_state", "session_state"), ("get_qr", "qrcode")):
                        start = len(frames.frames)
                        await frames.send(action, {"token": token})
                        reply = await frames.wait(lambda f, want=event: f["event"] in (want, "error"), start=start)
                        assert reply["event"] == event and reply["token"] == token, (i, token, reply)
                        if event == "session_state":
                            assert reply["data"]["status"] == "connected" and reply["data"]["token"] == token
                        else:
                            assert reply["data"] is None  # paired: no QR code
        finally:
            await frames.close()
    for token in TOKENS:
        r = await cluster.call("GET", f"/sandbox/devices/{token}/sent")
        got = {m["text"]: m["media"]["sha256"] for m in r.json()["data"]["messages"]}
        assert got == {f"n{i}": hashlib.sha256(data).hexdigest() for i, data in files.items()}

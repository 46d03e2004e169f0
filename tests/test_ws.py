"""The WebSocket protocol of CONTRACT §5: auth, frames, actions, subscriptions, slow readers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from typing import Any

import pytest
import websockets

from tests.support.constants import API_KEY, OTHER, TOKEN
from tests.support.gateway import Gateway

pytestmark = pytest.mark.live  # every test here needs a real socket


async def test_unauthenticated_upgrade_is_refused(gw: Gateway) -> None:
    """No key or a wrong key: the upgrade is refused and no frame is ever sent."""
    for query in ("", "?apiKey=wrong"):
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(f"ws://127.0.0.1:{gw.settings.port}/ws{query}")
        assert info.value.response.status_code == 403


async def test_header_auth_and_connected_frame(gw: Gateway) -> None:
    """X-API-Key on the upgrade works; the first frame is `connected` with a clientId."""
    url = f"ws://127.0.0.1:{gw.settings.port}/ws"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {API_KEY}"}) as ws:
        first = json.loads(await ws.recv())
        assert first["event"] == "connected" and first["data"]["clientId"]
        assert first["timestamp"].endswith("Z")


async def test_actions_answer(gw: Gateway) -> None:
    """ping, whoami, get_state, get_qr, list_devices each get their reply frame."""
    await gw.post("/devices", {"token": TOKEN})
    ws = await gw.ws()
    await ws.send("ping")
    await ws.event("pong")
    await ws.send("whoami")
    who = await ws.event("whoami")
    assert who["data"]["isAdmin"] is True
    await ws.send("get_state", {"token": TOKEN})
    state = await ws.event("session_state")
    assert state["token"] == TOKEN and state["data"]["status"] == "pairing"
    await gw.until(lambda: gw.rt.devices.get(TOKEN).qr)
    await ws.send("get_qr", {"token": TOKEN})
    qr = await ws.wait(lambda f: f["event"] == "qrcode" and f.get("token") == TOKEN)
    assert qr["data"].startswith("2@")
    await ws.send("list_devices")
    devices = await ws.event("devices")
    assert [d["token"] for d in devices["data"]["devices"]] == [TOKEN]


async def test_get_qr_without_qr_has_null_data(gw: Gateway) -> None:
    """get_qr for a connected device answers a qrcode frame with data null."""
    await gw.pair()
    ws = await gw.ws()
    start = len(ws.frames)
    await ws.send("get_qr", {"token": TOKEN})
    frame = await ws.event("qrcode", TOKEN, start=start)
    assert frame["data"] is None


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1]",
        '{"payload": {}}',
        '{"action": "dance"}',
        '{"action": "get_state", "payload": {"token": "60171222333"}}',
        '{"action": "get_state", "payload": {}}',
        '{"action": "subscribe", "payload": {"events": ["nope"]}}',
        '{"action": "subscribe", "payload": {"tokens": "x"}}',
        '{"action": "ping", "payload": 5}',
    ],
)
async def test_bad_frames_get_error_frames_and_connection_stays(gw: Gateway, raw: str) -> None:
    """Malformed frames and unknown actions → an `error` frame; the socket keeps working."""
    ws = await gw.ws()
    await ws.ws.send(raw)
    err = await ws.event("error")
    assert err["message"]
    await ws.send("ping")
    await ws.event("pong")


async def test_subscribe_filters_events_and_tokens(gw: Gateway) -> None:
    """After subscribe{events, tokens} only those events of those devices arrive."""
    ws = await gw.ws()
    await ws.send("subscribe", {"events": ["connection-success"], "tokens": [OTHER]})
    sub = await ws.event("subscribed")
    assert sub["data"] == {"events": ["connection-success"], "tokens": [OTHER]}
    start = len(ws.frames)
    await gw.pair(TOKEN)
    await gw.pair(OTHER)
    frame = await ws.event("connection-success", start=start)
    assert frame["token"] == OTHER
    assert {f["event"] for f in ws.frames[start:]} == {"connection-success"}
    assert all(f["token"] == OTHER for f in ws.frames[start:])


async def test_url_subscription_at_connect(gw: Gateway) -> None:
    """?tokens=&events= on the URL subscribes from the start."""
    ws = await gw.ws(f"tokens={OTHER}&events=qrcode")
    await gw.post("/devices", {"token": TOKEN})
    await gw.post("/devices", {"token": OTHER})
    frame = await ws.event("qrcode")
    assert frame["token"] == OTHER
    assert all(f["event"] in ("connected", "qrcode") for f in ws.frames)


async def test_every_event_published_after_connect_arrives_in_order(gw: Gateway) -> None:
    """A full pairing cycle yields its frames in order: qrcode → connection-success → session_update."""
    ws = await gw.ws()
    await gw.pair()
    await ws.event("connection-success", TOKEN)
    names = [n for n in ws.names() if n in ("qrcode", "connection-success")]
    assert names[0] == "qrcode" and names[-1] == "connection-success"


async def _raw_ws_that_never_reads(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket handshake over a tiny receive buffer, after which nothing is read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=2**16)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws?apiKey={API_KEY} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


async def test_slow_reader_is_closed_with_1013(gateway_factory: Any) -> None:
    """A client that stops reading is closed with 1013 once its queue is full; others keep receiving."""
    gw = await gateway_factory(ws_queue_size=16)
    reader, writer = await _raw_ws_that_never_reads(gw.settings.port)
    fast = await gw.ws()
    await gw.pair()
    driver = gw.rt.devices.get(TOKEN).driver
    for i in range(600):
        driver.incoming(OTHER, "x", f"flood {i} " + "y" * 8000)
    await fast.wait(lambda f: f["event"] == "message" and f["data"]["text"].startswith("flood 599"), timeout=20)
    await gw.until(lambda: gw.rt.hub.client_count == 1)  # the slow one is detached, the fast one stays
    # Now drain the slow socket: the stream ends with a close frame carrying 1013.
    close = b"\x88\x11\x03\xf5client too slow"
    seen = b""
    async with asyncio.timeout(15):
        while close not in seen:
            chunk = await reader.read(2**16)
            assert chunk, "connection ended without a 1013 close frame"
            seen = seen[-64:] + chunk
    writer.close()

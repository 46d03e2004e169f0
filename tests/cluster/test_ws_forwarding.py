"""The WebSocket's per-device requests on any node (CONTRACT §14 "any node answers any HTTP or WebSocket
call"): ``get_state`` and ``get_qr`` for a device another node runs are answered as that node answers them
(gateway/api/routes/ws.py ``Session._ask_owner``, forwarded as the REST reads they mirror); a device the
caller may not see is one that does not exist; no live owner, or the bus down, is a ``DEVICE_MOVING``
error frame, as HTTP's 503.

Two live in-process nodes; node a runs the devices and serves them (``on_acquired``, as the ownership
calls it), sockets on node b ask."""

from __future__ import annotations

from typing import Any

import pytest
import websockets

from tests.cluster.test_invalidations import signup
from tests.support.bus import synced
from tests.support.constants import TOKEN
from tests.support.frames import Frames
from tests.support.gateway import Gateway

pytestmark = pytest.mark.live  # WebSockets

PAIRING = "60123456711"  # created, never scanned: it shows a QR code
ERINS = "60123456722"  # an account's device
NOWHERE = "60123456733"  # no node has it


async def serve_on_a(a: Gateway, *tokens: str) -> None:
    for token in tokens:
        await a.rt.forwarder.on_acquired(token)
    await synced(a.rt.bus)


async def ask(ws: Frames, action: str, token: str) -> dict[str, Any]:
    """The reply to one request: the first frame after it (replies keep the order of the requests)."""
    start = len(ws.frames)
    await ws.send(action, {"token": token})
    return await ws.wait(lambda f: f["event"] in ("session_state", "qrcode", "error"), start=start)


def same_frame(x: dict[str, Any], y: dict[str, Any]) -> None:
    """Alike but for the frame's time (and a connected device's seconds of uptime)."""
    for f in (x, y):
        f.pop("timestamp")
        if isinstance(f.get("data"), dict):
            f["data"].pop("uptime", None)
    assert x == y


async def test_get_state_and_get_qr_of_another_nodes_device_answer_as_its_node(nodes: list[Gateway]) -> None:
    a, b = nodes
    await a.pair(TOKEN)
    r = await a.post("/devices", {"token": PAIRING})
    assert r.status_code == 200, r.text
    qr = await a.until(lambda: (d := a.rt.devices.get(PAIRING)) is not None and d.qr)
    await serve_on_a(a, TOKEN, PAIRING)
    here, there = await a.ws(), await b.ws()
    state = await ask(there, "get_state", TOKEN)
    assert state["event"] == "session_state" and state["token"] == TOKEN
    assert state["data"]["status"] == "connected"
    same_frame(state, await ask(here, "get_state", TOKEN))
    code = await ask(there, "get_qr", PAIRING)
    assert code["event"] == "qrcode" and code["token"] == PAIRING and code["data"] == qr
    same_frame(code, await ask(here, "get_qr", PAIRING))
    none = await ask(there, "get_qr", TOKEN)  # connected: no QR code, data null as on its own node
    assert none["event"] == "qrcode" and none["data"] is None
    same_frame(none, await ask(here, "get_qr", TOKEN))
    assert b.rt.forwarder.forwarded == 3 and a.rt.forwarder.served == 3
    # A device no node has is unknown on every node alike (answered here: nobody to ask).
    same_frame(await ask(there, "get_state", NOWHERE), await ask(here, "get_state", NOWHERE))


async def test_an_accounts_socket_on_another_node_reads_its_device_and_never_anothers(nodes: list[Gateway]) -> None:
    a, b = nodes
    erin = await signup(a, "erin")
    mallory = await signup(a, "mallory")
    r = await a.client(headers={"X-API-Key": erin["apiKey"]}).post("/devices", json={"token": ERINS})
    assert r.status_code == 200, r.text
    await a.pair(TOKEN)  # the operator's
    await serve_on_a(a, TOKEN, ERINS)
    erins = await b.ws(key=erin["apiKey"])  # ?apiKey=: the owner gets it as X-API-Key
    state = await ask(erins, "get_state", ERINS)
    assert state["event"] == "session_state" and state["data"]["token"] == ERINS
    for headers in (  # a session, as a bearer token or as the browser's cookie, goes along as it came
        {"Authorization": f"Bearer {erin['token']}"},
        {"Cookie": f"gw_session={erin['token']}", "Origin": b.base},
    ):
        via = b.adopt(Frames(await websockets.connect(b.ws_url(), additional_headers=headers)))
        await via.event("connected")
        assert (await ask(via, "get_qr", ERINS))["event"] == "qrcode", headers
    assert b.rt.forwarder.forwarded == 3
    hers = await ask(erins, "get_state", TOKEN)
    assert hers["event"] == "error" and hers["message"] == f"no device for token {TOKEN}"
    # Another account's device, asked through either node, reads exactly as one that does not exist.
    hostile_there, hostile_here = await b.ws(key=mallory["apiKey"]), await a.ws(key=mallory["apiKey"])
    for token in (ERINS, TOKEN):
        got = await ask(hostile_there, "get_qr", token)
        same_frame(got, await ask(hostile_here, "get_qr", token))
        assert got == {"event": "error", "message": f"no device for token {token}"}
    nowhere = await ask(hostile_there, "get_state", NOWHERE)
    assert nowhere == {"event": "error", "message": f"no device for token {NOWHERE}", "timestamp": nowhere["timestamp"]}


async def test_a_device_without_a_live_owner_or_the_bus_down_is_device_moving(nodes: list[Gateway]) -> None:
    a, b = nodes
    await a.pair(TOKEN)
    await serve_on_a(a, TOKEN)
    ws = await b.ws()
    assert (await ask(ws, "get_state", TOKEN))["event"] == "session_state"
    await a.rt.forwarder.on_released(TOKEN)  # the device is between owners
    await synced(a.rt.bus)
    for action in ("get_state", "get_qr"):
        moving = await ask(ws, action, TOKEN)
        assert moving["event"] == "error" and moving["token"] == TOKEN, moving
        assert moving["data"] == {"code": "DEVICE_MOVING", "retryAfter": 2}
        assert "moved" in moving["message"]
    await serve_on_a(a, TOKEN)
    await b.rt.bus.stop()  # as HTTP answers then: 503 DEVICE_MOVING
    moving = await ask(ws, "get_state", TOKEN)
    assert moving["event"] == "error" and moving["data"] == {"code": "DEVICE_MOVING", "retryAfter": 2}
    assert (await b.http.get(f"/devices/{TOKEN}")).json()["error"]["code"] == "DEVICE_MOVING"

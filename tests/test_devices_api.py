"""Devices over HTTP and the WebSocket, through the sandbox driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway


@pytest.mark.live  # a WebSocket
async def test_pair_by_qr_sends_qr_then_connection_success(gw: Gateway) -> None:
    """POST /devices with qr → a `2@` QR frame within 1 s, scan → connected frames and state."""
    ws = await gw.ws()
    r = await gw.post("/devices", {"token": "0123456789", "method": "qr", "name": "Sales"})
    assert r.status_code == 200
    assert r.json()["data"] == {"token": TOKEN, "method": "qr", "status": "pairing"}
    qr = await ws.event("qrcode", TOKEN, timeout=1.0)
    assert qr["data"].startswith("2@")
    body = (await gw.http.get(f"/devices/{TOKEN}/qr")).json()["data"]
    assert body == {"hasQR": True, "qr": qr["data"]}
    await gw.post(f"/sandbox/devices/{TOKEN}/scan")
    ok = await ws.event("connection-success", TOKEN)
    assert ok["data"]["platform"] == "android"
    update = await ws.wait(lambda f: f["event"] == "session_update" and f["data"]["status"] == "connected")
    assert update["data"]["ready"] is True
    state = (await gw.http.get(f"/devices/{TOKEN}")).json()["data"]
    assert state["status"] == "connected" and state["name"] == "Sales" and state["hasQR"] is False
    assert state["info"]["phoneMasked"] == "6012****789"


@pytest.mark.live  # a WebSocket
async def test_pair_by_code_sends_pairing_code(gw: Gateway) -> None:
    """method=code → a `pairing-code` frame shaped XXXX-XXXX."""
    ws = await gw.ws()
    r = await gw.post("/devices", {"token": OTHER, "method": "code"})
    assert r.json()["data"]["method"] == "code"
    frame = await ws.event("pairing-code", OTHER)
    code = frame["data"]["code"]
    state = (await gw.http.get(f"/devices/{OTHER}")).json()["data"]
    assert state["pairingCode"] == code  # a reloaded page can show it again
    assert len(code) == 9 and code[4] == "-" and code.replace("-", "").isalnum() and code.upper() == code
    r = await gw.post(f"/sandbox/devices/{OTHER}/scan")
    assert r.json()["data"]["status"] == "connected"


@pytest.mark.live  # a WebSocket
async def test_drop_reconnects_on_its_own(gw: Gateway) -> None:
    """drop → disconnected with reconnecting true → connected again, within SANDBOX_RECONNECT_MS."""
    await gw.pair()
    ws = await gw.ws()
    r = await gw.post(f"/sandbox/devices/{TOKEN}/drop")
    assert r.json()["data"]["status"] == "disconnected"
    assert r.json()["data"]["reconnecting"] is True
    err = await ws.event("connection-error", TOKEN)
    assert err["message"]
    await ws.event("connection-success", TOKEN, timeout=gw.settings.sandbox_reconnect_ms / 1000 + 0.5)
    state = (await gw.http.get(f"/devices/{TOKEN}")).json()["data"]
    assert state["status"] == "connected" and state["reconnecting"] is False


@pytest.mark.live  # a WebSocket
async def test_unlink_logs_out_and_removes_session_file(gw: Gateway) -> None:
    """unlink → logged_out, `Logged out` error frame, session file gone."""
    await gw.pair()
    session = Path(gw.settings.data_dir) / f"{TOKEN}.db"
    assert session.is_file()
    ws = await gw.ws()
    r = await gw.post(f"/sandbox/devices/{TOKEN}/unlink")
    assert r.json()["data"]["status"] == "logged_out"
    frame = await ws.event("connection-error", TOKEN)
    assert frame["message"] == "Logged out"
    assert not session.exists()


async def test_disconnect_keeps_session_and_stays_down(gw: Gateway) -> None:
    """POST /disconnect → disconnected, reconnecting false; POST /devices brings it back without a scan."""
    await gw.pair()
    r = await gw.post(f"/devices/{TOKEN}/disconnect")
    data = r.json()["data"]
    assert data["status"] == "disconnected" and data["reconnecting"] is False
    assert (Path(gw.settings.data_dir) / f"{TOKEN}.db").is_file()
    r = await gw.post("/devices", {"token": TOKEN})
    assert r.json()["data"]["status"] == "connected"


@pytest.mark.live  # a WebSocket
async def test_delete_logs_out_and_forgets_device(gw: Gateway) -> None:
    """DELETE → device.logged_out frame, session file deleted, then DEVICE_NOT_FOUND."""
    await gw.pair()
    ws = await gw.ws()
    r = await gw.http.delete(f"/devices/{TOKEN}")
    assert r.status_code == 200 and r.json()["data"]["token"] == TOKEN
    await ws.wait(lambda f: f["event"] == "connection-error" and f.get("message") == "Logged out")
    assert not (Path(gw.settings.data_dir) / f"{TOKEN}.db").exists()
    r = await gw.http.get(f"/devices/{TOKEN}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "DEVICE_NOT_FOUND"


async def test_list_patch_groups_and_stats_reset(gw: Gateway) -> None:
    """GET /devices lists summaries; PATCH updates; groups come from the driver; stats reset to zero."""
    await gw.pair()
    devices = (await gw.http.get("/devices")).json()["data"]["devices"]
    assert [d["token"] for d in devices] == [TOKEN]
    assert set(devices[0]) == {"token", "name", "status", "method", "pushname", "createdAt", "connectedAt"}
    r = await gw.http.patch(f"/devices/{TOKEN}", json={"name": "Support", "webhookEvents": ["message.received"]})
    assert r.json()["data"]["name"] == "Support"
    assert r.json()["data"]["webhookEvents"] == ["message.received"]
    groups = (await gw.http.get(f"/devices/{TOKEN}/groups")).json()["data"]
    assert groups["count"] == len(groups["groups"]) == 2
    assert set(groups["groups"][0]) == {
        "jid",
        "name",
        "topic",
        "owner",
        "participantCount",
        "isAdmin",
        "isSuperAdmin",
    }
    r = await gw.post(f"/devices/{TOKEN}/stats/reset")
    assert r.json()["data"]["stats"] == {"messagesSent": 0, "messagesReceived": 0}


async def test_qr_image_formats(gw: Gateway) -> None:
    """?format=png / svg return images while pairing; 404 NOT_FOUND once there is no QR."""
    await gw.post("/devices", {"token": TOKEN})
    await gw.until(lambda: gw.rt.devices.get(TOKEN).qr)
    png = await gw.http.get(f"/devices/{TOKEN}/qr?format=png")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    svg = await gw.http.get(f"/devices/{TOKEN}/qr?format=svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.content.startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')
    await gw.post(f"/sandbox/devices/{TOKEN}/scan")
    r = await gw.http.get(f"/devices/{TOKEN}/qr?format=png")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"

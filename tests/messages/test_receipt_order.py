"""Receipts are queued for the group commit without the pump waiting for each (two per send: one
commit each fell behind the sends), yet a device's frames keep the order its events came in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.drivers.base import Qr, Receipt
from tests.support.constants import TOKEN
from tests.support.gateway import Gateway


async def test_a_frame_after_queued_receipts_waits_for_them(gw: Gateway, monkeypatch: Any) -> None:
    """Receipts still committing, then a QR (no store work): the QR frame comes after the receipts'."""
    await gw.pair()
    ids = []
    for i in range(5):
        r = await gw.post("/messages", {"token": TOKEN, "to": "60198765432", "text": f"m{i}"})
        ids.append(r.json()["data"]["messageId"])
    device = gw.rt.devices.get(TOKEN)
    told: list[str] = []  # the frames of this test's receipts ("played"), and the QR's

    def publish(event: str, data: Any = None, message: str | None = None) -> None:
        if event == "qrcode" or (isinstance(data, dict) and "played" in (data.get("type"), data.get("status"))):
            told.append(event)

    monkeypatch.setattr(device, "publish", publish)
    monkeypatch.setattr(device, "publish_lazy", lambda event, build: publish(event, build()))
    monkeypatch.setattr(device, "publish_each", lambda event, items, build: [publish(event, build(i)) for i in items])
    now = datetime.now(UTC)
    for msg_id in ids:
        await device.pump.handle(Receipt("played", (msg_id,), "60198765432@s.whatsapp.net", now))
    await device.pump.handle(Qr("qr-after-receipts"))
    q = told.index("qrcode")
    assert told[:q].count("message.receipt") == 5 and told[:q].count("message.status") == 5, told
    assert "message.receipt" not in told[q:] and "message.status" not in told[q:], told

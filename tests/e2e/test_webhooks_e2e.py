"""Webhook durability with the real process: events while the receiver is down survive kill -9."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.support.constants import API_KEY, OTHER, TOKEN
from tests.support.net import free_port
from tests.support.poll import until as poll_until
from tests.support.proc import ServerProcess
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SENDERS = ["60171222333", "60127654321", "60198765432"]


async def until(fn: Any, timeout: float = 15.0) -> Any:
    return await poll_until(fn, timeout)


async def deliveries(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await client.get("/webhooks/deliveries?limit=1000")
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]["deliveries"]
    return rows


def fingerprint(body: dict[str, Any]) -> tuple[str, str]:
    """What identifies an event in this scenario (ids are not in the body)."""
    data = body["data"]
    if body["event"] == "message.received":
        return body["event"], data["text"]
    if body["event"] == "contacts.new":
        return body["event"], data["phone"]
    if body["event"] == "message.receipt":
        return body["event"], data["type"]
    if body["event"] == "message.status":
        return body["event"], data["status"]
    return body["event"], ""


async def test_pending_webhooks_survive_kill_9_and_arrive_after_restart(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """Receiver down while events happen → SIGKILL → restart → receiver up: every event arrives, signed."""
    receiver = Receiver(free_port())
    env = {
        "WEBHOOK_URL": receiver.url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_RETRY_BASE_MS": "50",
        "WEBHOOK_RETRY_MAX_MS": "300",
        "WEBHOOK_MAX_ATTEMPTS": "1000",
        "SANDBOX_RECEIPT_DELAY_MS": "20",
    }
    first = ServerProcess(tmp_path, **env)
    servers.append(first)
    first.start()
    headers = {"X-API-Key": API_KEY}
    async with httpx.AsyncClient(base_url=first.base, headers=headers, timeout=10) as c:
        assert (await c.post("/devices", json={"token": TOKEN})).status_code == 200
        assert (await c.post(f"/sandbox/devices/{TOKEN}/scan")).json()["data"]["status"] == "connected"
        for i in range(5):
            r = await c.post(f"/sandbox/devices/{TOKEN}/incoming", json={"from": SENDERS[i % 3], "text": f"m{i}"})
            assert r.status_code == 200
        await c.post(f"/sandbox/devices/{TOKEN}/history", json={"contacts": [{"phone": "60133334444", "name": "H"}]})
        assert (await c.post("/messages", json={"token": TOKEN, "to": OTHER, "text": "out"})).status_code == 200
        # connected, messages, new contacts, sync, delivered+read receipts, sent/delivered/read statuses
        expected = 1 + 5 + 3 + 1 + 2 + 3

        async def all_tried() -> list[dict[str, Any]] | None:
            rows = await deliveries(c)
            ok = len(rows) == expected and all(r["status"] == "pending" and r["attempts"] >= 1 for r in rows)
            return rows if ok else None

        before = await until(all_tried)
        assert all(r["lastError"].startswith("connection failed") for r in before)

    first.signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL

    second = ServerProcess(tmp_path, PORT=str(first.port), **env)
    servers.append(second)
    second.start()
    await receiver.start()
    try:
        async with httpx.AsyncClient(base_url=second.base, headers=headers, timeout=10) as c:

            async def all_delivered() -> list[dict[str, Any]] | None:
                rows = await deliveries(c)
                old = [r for r in rows if r["id"] in {b["id"] for b in before}]
                return rows if len(old) == expected and all(r["status"] == "delivered" for r in old) else None

            await until(all_delivered)
        bodies = [Webhook(SECRET).verify(h.body, h.headers) for h in receiver.hits]
        for h in receiver.hits:
            assert h.headers["x-webhook-signature"] == hmac.new(SECRET.encode(), h.body, hashlib.sha256).hexdigest()
        got = sorted(fingerprint(b) for b in bodies)
        want = sorted(
            [("device.connected", "")] * 2  # before the kill, and again on restore
            + [("message.received", f"m{i}") for i in range(5)]
            + [("contacts.new", p) for p in SENDERS]
            + [("contacts.sync", ""), ("message.receipt", "delivered"), ("message.receipt", "read")]
            + [("message.status", s) for s in ("sent", "delivered", "read")]
        )
        assert got == want
        second.signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait) == 0
    finally:
        await receiver.stop()

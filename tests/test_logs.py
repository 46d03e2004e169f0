"""The real server's log: one JSON line per request, lifecycle and webhook outcomes
at info — and never a key, password, session token, webhook secret or message text."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.constants import OTHER, TOKEN
from tests.support.net import free_port
from tests.support.proc import ServerProcess
from tests.support.webhook_receiver import Hit, Receiver

pytestmark = pytest.mark.e2e


def distinctive(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def parse_lines(log: str) -> list[dict[str, Any]]:
    """Every non-empty line, each of which must be one JSON object."""
    out = []
    for line in log.splitlines():
        if line.strip():
            entry = json.loads(line)
            assert isinstance(entry, dict), line
            out.append(entry)
    return out


async def test_logs_are_json_lines_without_secrets_or_message_text(tmp_path: Path) -> None:
    """Signup, login, keys, a send, an incoming message and a retried signed webhook leave no secret in the log."""
    admin_key = distinctive("admin-key")
    secret = "whsec_" + base64.b64encode(distinctive("hook-secret").encode()).decode()
    password = distinctive("Pass-word")
    sent_text = distinctive("outgoing text")
    incoming_text = distinctive("incoming text")
    wrong_key = distinctive("wrong-key")

    # First delivery attempt fails (503) so a retry outcome is logged, then 200.
    receiver = await Receiver(free_port(), respond=lambda hit: (503, {}) if hit.n == 1 else (200, {})).start()
    server = ServerProcess(
        tmp_path,
        API_KEY=admin_key,
        WEBHOOK_URL=receiver.url,
        WEBHOOK_SECRET=secret,
        WEBHOOK_EVENTS="message.received",
        WEBHOOK_RETRY_BASE_MS="10",
        WEBHOOK_RETRY_MAX_MS="50",
        ALLOW_SIGNUP="true",
        LOG_LEVEL="info",
        LOG_FORMAT="json",
    )
    await asyncio.to_thread(server.start)
    issued: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as anon:
            admin = {"X-API-Key": admin_key}
            r = await anon.post(
                "/auth/signup", json={"username": "loguser", "email": "log@example.com", "password": password}
            )
            assert r.status_code == 200, r.text
            issued += [r.json()["data"]["token"], r.json()["data"]["apiKey"]]
            r = await anon.post("/auth/login", json={"username": "loguser", "password": password})
            assert r.status_code == 200, r.text
            session = r.json()["data"]["token"]
            issued += [session, r.json()["data"]["apiKey"]]
            r = await anon.post("/auth/keys", json={"name": "ci"}, headers={"Authorization": f"Bearer {session}"})
            assert r.status_code == 200, r.text
            issued.append(r.json()["data"]["key"])
            assert (await anon.get("/auth/me", headers={"X-API-Key": issued[-1]})).status_code == 200
            anon.cookies.clear()  # the session cookie from login would authenticate the next calls
            assert (await anon.get("/devices", headers={"X-API-Key": wrong_key})).status_code == 401
            assert (await anon.get("/ws", params={"apiKey": wrong_key})).status_code in (400, 403, 404)

            assert (await anon.post("/devices", json={"token": TOKEN}, headers=admin)).status_code == 200
            assert (await anon.post(f"/sandbox/devices/{TOKEN}/scan", headers=admin)).status_code == 200
            sent = await anon.post("/messages", json={"token": TOKEN, "to": OTHER, "text": sent_text}, headers=admin)
            assert sent.status_code == 200, sent.text
            r = await anon.post(
                f"/sandbox/devices/{TOKEN}/incoming",
                json={"from": OTHER, "name": "Log Tester", "text": incoming_text},
                headers=admin,
            )
            assert r.status_code == 200, r.text
            hits: list[Hit] = await receiver.wait_count(2, timeout=10)
            assert hits[1].json()["data"]["text"] == incoming_text
            assert "webhook-signature" in hits[1].headers
            assert (await anon.get(f"/devices/{TOKEN}", headers=admin)).status_code == 200
            assert (await anon.post("/auth/logout", headers={"Authorization": f"Bearer {session}"})).status_code == 200
        server.signal()
        assert await asyncio.to_thread(server.wait) == 0
    finally:
        server.kill()
        await receiver.stop()

    log = server.log()
    for needle in (
        admin_key,
        secret,
        secret.removeprefix("whsec_"),
        password,
        sent_text,
        incoming_text,
        wrong_key,
        *issued,
    ):
        assert needle not in log, f"a secret or message text reached the log: {needle[:12]}…"

    entries = parse_lines(log)
    requests = [e for e in entries if e.get("event") == "http.request"]
    send_line = next(e for e in requests if e["route"] == "/messages")
    assert send_line["method"] == "POST" and send_line["status"] == 200
    assert isinstance(send_line["duration_ms"], float | int)
    assert send_line["request_id"] == sent.headers["x-request-id"]
    device_line = next(e for e in requests if e["route"] == "/devices/{token}" and e["method"] == "GET")
    assert device_line["token"] == TOKEN
    assert any(e["status"] == 401 and e["route"] == "unmatched" for e in requests)

    def at_info(name: str) -> list[dict[str, Any]]:
        return [e for e in entries if e.get("event") == name and e.get("level") == "info"]

    assert at_info("device.connected")[0]["token"] == TOKEN
    assert at_info("webhook.retry"), "a retried delivery is logged at info"
    assert at_info("webhook.delivered"), "a delivered webhook is logged at info"

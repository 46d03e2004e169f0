"""A campaign survives ``kill -9`` of the real process: after each restart it carries on where it stopped,
and the sandbox's ``/sent`` log (what the simulated WhatsApp received, which outlives the gateway) holds
every recipient exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.constants import API_KEY, TOKEN
from tests.support.poll import until_sync
from tests.support.proc import ServerProcess

pytestmark = pytest.mark.e2e

# 60 valid numbers, none ending in 0 (the sandbox's "not on WhatsApp")
RECIPIENTS = [f"6012340{i:04d}" for i in range(1, 70) if i % 10][:60]
ENV = {"CAMPAIGN_CLOCK_SCALE": "20", "SANDBOX_RECEIPT_DELAY_MS": "20"}  # 60/min on a 20x clock: 20 sends/s


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.kill()


def poll(http: httpx.Client, fn: Any, timeout: float = 30.0) -> Any:
    return until_sync(lambda: fn(http), timeout)


def campaign(http: httpx.Client, cid: str) -> dict[str, Any]:
    data: dict[str, Any] = http.get(f"/campaigns/{cid}").json()["data"]
    return data


def test_kill_9_mid_campaign_then_restart_sends_each_recipient_exactly_once(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    def start() -> tuple[ServerProcess, httpx.Client]:
        s = ServerProcess(tmp_path, **ENV).start()
        servers.append(s)
        return s, httpx.Client(base_url=s.base, headers={"X-API-Key": API_KEY}, timeout=10)

    server, http = start()
    assert http.post("/devices", json={"token": TOKEN}).status_code == 200
    assert http.post(f"/sandbox/devices/{TOKEN}/scan").json()["data"]["status"] == "connected"
    body = {
        "token": TOKEN,
        "name": "kill me",
        "message": {"text": "Hello {{name}}"},
        "recipients": [{"phone": p, "name": f"P{i}"} for i, p in enumerate(RECIPIENTS)],
        "pace": {"perMinute": 60},
    }
    r = http.post("/campaigns", json=body)
    assert r.status_code == 201, r.text
    cid = r.json()["data"]["id"]

    for threshold in (12, 35):  # two kills, at two points of the list
        poll(http, lambda h, t=threshold: campaign(h, cid)["sent"] >= t)
        server.proc.kill()  # type: ignore[union-attr]  # SIGKILL: no shutdown, no flush
        server.proc.wait(10)  # type: ignore[union-attr]
        http.close()
        server, http = start()
        # The device reconnects on its own (its session file), the campaign picks up where it stopped.
        poll(http, lambda h: h.get(f"/devices/{TOKEN}").json()["data"]["status"] == "connected")

    done = poll(http, lambda h: (c := campaign(h, cid))["status"] == "completed" and c)
    assert (done["total"], done["sent"], done["failed"], done["skipped"], done["pending"]) == (60, 60, 0, 0, 0)
    sent = http.get(f"/sandbox/devices/{TOKEN}/sent").json()["data"]["messages"]
    counts = Counter(m["to"] for m in sent)
    assert counts == Counter({f"{p}@s.whatsapp.net": 1 for p in RECIPIENTS})
    assert {m["text"] for m in sent} == {f"Hello P{i}" for i in range(60)}
    http.close()

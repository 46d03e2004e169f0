"""A campaign paused, resumed or cancelled through a node that does not run its device (CONTRACT §13–14):
the worker, on the device's node, follows at once — told over the bus's invalidations — instead of
sending on from its own memory of the status. Two in-process nodes; the campaign's clock is the real one
and its pace slow, so the worker is between sends the whole time."""

from __future__ import annotations

from typing import Any

from tests.support.constants import TOKEN
from tests.support.gateway import Gateway
from tests.support.poll import until

PEOPLE = ["60198765432", "60171222333", "60123400001"]


async def _action(gw: Gateway, cid: str, action: str) -> dict[str, Any]:
    r = await gw.http.post(f"/campaigns/{cid}/{action}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def test_a_pause_resume_and_cancel_on_another_node_reach_the_worker(nodes: list[Gateway]) -> None:
    a, b = nodes
    await a.pair(TOKEN)
    body = {
        "token": TOKEN,
        "name": "spring",
        "message": {"text": "Hi {{name}}"},
        "recipients": [{"phone": p, "name": "x"} for p in PEOPLE],
        "pace": {"perMinute": 1},
    }
    r = await a.http.post("/campaigns", json=body)
    assert r.status_code == 201, r.text
    cid = r.json()["data"]["id"]
    campaigns = a.rt.campaigns
    assert cid in campaigns.workers and cid not in b.rt.campaigns.workers  # it runs where the device is

    def status_on_a() -> str | None:
        worker = campaigns.workers.get(cid)
        return None if worker is None else str(worker.status)

    assert (await _action(b, cid, "pause"))["status"] == "paused"
    await until(lambda: status_on_a() == "paused", 5, "node a's worker paused")
    assert (await _action(b, cid, "resume"))["status"] == "running"
    await until(lambda: status_on_a() == "running", 5, "node a's worker running again")
    assert cid not in b.rt.campaigns.workers  # resumed through b, still sent from a
    assert (await _action(b, cid, "cancel"))["status"] == "cancelled"
    await until(lambda: status_on_a() in (None, "cancelled"), 5, "node a's worker stopped")

"""Any node lists every device of the cluster (CONTRACT §14: any node answers as if local): ``GET /devices``
and the WebSocket's ``list_devices`` on one node name the devices the other node runs too — and, as
everywhere, only those the caller may see."""

from __future__ import annotations

import pytest

from tests.support.constants import TOKEN
from tests.support.gateway import Gateway

ELSEWHERE = "60123456799"


@pytest.mark.live  # a WebSocket
async def test_every_node_lists_the_devices_of_every_node(nodes: list[Gateway]) -> None:
    a, b = nodes
    await a.pair(TOKEN)
    await b.pair(ELSEWHERE)
    for gw in (a, b):
        r = await gw.http.get("/devices")
        assert r.status_code == 200, r.text
        listed = {d["token"]: d for d in r.json()["data"]["devices"]}
        assert set(listed) == {TOKEN, ELSEWHERE}
        assert all(d["status"] == "connected" for d in listed.values())  # the other node's as it stored it
    ws = await b.ws()
    await ws.send("list_devices")
    frame = await ws.event("devices")
    assert sorted(d["token"] for d in frame["data"]["devices"]) == sorted([TOKEN, ELSEWHERE])


async def test_another_accounts_devices_on_other_nodes_stay_unlisted(nodes: list[Gateway]) -> None:
    a, b = nodes
    await a.pair(TOKEN)
    await b.pair(ELSEWHERE)  # the operator's (no account)
    assert await a.rt.devices.listed(owner_id=4242, is_admin=False) == []
    assert {s["token"] for s in await a.rt.devices.listed(owner_id=None, is_admin=True)} == {TOKEN, ELSEWHERE}

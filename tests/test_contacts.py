"""Contact capture (messages, history sync) and GET /contacts/{token} as JSON and CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.accounts import Tenants
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway

ALI, SITI, TAN = "60171222333", "60127654321", "60198765432"


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def contacts(gw: Gateway, query: str = "", token: str = TOKEN) -> dict[str, Any]:
    r = await gw.http.get(f"/contacts/{token}{query}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def incoming(gw: Gateway, sender: str, name: str | None, text: str = "hi", token: str = TOKEN) -> None:
    body = {"from": sender, "text": text} | ({"name": name} if name is not None else {})
    r = await gw.post(f"/sandbox/devices/{token}/incoming", body)
    assert r.status_code == 200, r.text


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# --- capture through the pump -------------------------------------------------------------------


@pytest.mark.live  # a WebSocket
async def test_incoming_and_history_show_in_json_and_csv(gw: Gateway) -> None:
    """Message senders and a history batch become contacts, ordered by firstSeen then phone, in JSON and CSV."""
    await gw.pair()
    ws = await gw.ws()
    await incoming(gw, TAN, "Tan")
    new = await ws.event("contacts.new", TOKEN)
    assert new["data"] == {"phone": TAN, "name": "Tan"}
    r = await gw.post(
        f"/sandbox/devices/{TOKEN}/history",
        {
            "contacts": [
                {"phone": SITI, "name": "Siti"},
                {"phone": "+60 17-122 2333", "name": "Ali"},
                {"phone": TAN, "name": ""},
            ]
        },
    )
    assert r.status_code == 200, r.text
    sync = await ws.event("contacts.sync", TOKEN)
    assert [(c["phone"], c["name"], c["source"]) for c in sync["data"]] == [
        (SITI, "Siti", "history"),
        (ALI, "Ali", "history"),
    ]
    data = await gw.until(lambda: _total_is(gw, 3))
    rows = data["contacts"]
    assert [(c["phone"], c["name"], c["source"]) for c in rows] == [
        (TAN, "Tan", "message"),
        (SITI, "Siti", "history"),  # same firstSeen as Ali: then by phone
        (ALI, "Ali", "history"),
    ]
    assert rows[0]["firstSeen"] <= rows[1]["firstSeen"] == rows[2]["firstSeen"]
    assert rows[0]["lastSeen"] > rows[0]["firstSeen"]  # Tan was seen again in the history
    assert (data["total"], data["limit"], data["offset"]) == (3, 100, 0)

    r = await gw.http.get(f"/contacts/{TOKEN}?format=csv")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="contacts-{TOKEN}.csv"'
    lines = parse_csv(r.text)
    assert r.text.split("\r\n")[0] == "phone,name,source,first_seen,last_seen"
    assert [row[:3] for row in lines[1:]] == [
        [TAN, "Tan", "message"],
        [SITI, "Siti", "history"],
        [ALI, "Ali", "history"],
    ]
    assert lines[1][3:] == [rows[0]["firstSeen"], rows[0]["lastSeen"]]


async def _total_is(gw: Gateway, n: int) -> dict[str, Any] | None:
    data = await contacts(gw)
    return data if data["total"] == n else None


@pytest.mark.live  # a WebSocket
async def test_contacts_new_only_for_new_senders_and_names_survive(gw: Gateway) -> None:
    """A second message from a known sender gives no contacts.new and a blank name keeps the known one."""
    await gw.pair()
    ws = await gw.ws()
    await incoming(gw, ALI, "Ali")
    await ws.event("contacts.new", TOKEN)
    mark = len(ws.frames)  # before the next sends: their frames may arrive before we look
    await incoming(gw, ALI, None, "again")
    await incoming(gw, SITI, "Siti")
    await ws.event("contacts.new", TOKEN, start=mark)
    assert [f["data"]["phone"] for f in ws.frames if f["event"] == "contacts.new"] == [ALI, SITI]
    rows = (await contacts(gw))["contacts"]
    assert [(c["phone"], c["name"]) for c in rows] == [(ALI, "Ali"), (SITI, "Siti")]


async def test_csv_quotes_and_neutralises_names(gw: Gateway) -> None:
    """Names with commas, quotes, newlines or a leading = are quoted and made inert in the CSV."""
    await gw.pair()
    names = {ALI: '=HYPERLINK("http://evil")', SITI: 'Siti, "the boss"\nSales', TAN: "-1+1"}
    await gw.post(
        f"/sandbox/devices/{TOKEN}/history", {"contacts": [{"phone": p, "name": n} for p, n in names.items()]}
    )
    await gw.until(lambda: _total_is(gw, 3))
    text = (await gw.http.get(f"/contacts/{TOKEN}?format=csv")).text
    got = {row[0]: row[1] for row in parse_csv(text)[1:]}
    assert got == {ALI: "'" + names[ALI], SITI: names[SITI], TAN: "'-1+1"}
    json_names = {c["phone"]: c["name"] for c in (await contacts(gw))["contacts"]}
    assert json_names == names  # JSON is not altered


async def test_limit_offset_and_all(gw: Gateway) -> None:
    """limit/offset page the JSON and the CSV; limit=all exports every row as CSV."""
    await gw.pair()
    phones = [f"601712223{i:02d}" for i in range(1, 26)]
    await gw.post(
        f"/sandbox/devices/{TOKEN}/history", {"contacts": [{"phone": p, "name": f"C{p[-2:]}"} for p in phones]}
    )
    await gw.until(lambda: _total_is(gw, 25))
    page = await contacts(gw, "?limit=10&offset=20")
    assert [c["phone"] for c in page["contacts"]] == phones[20:]
    assert (page["total"], page["limit"], page["offset"]) == (25, 10, 20)
    csv_page = parse_csv((await gw.http.get(f"/contacts/{TOKEN}?format=csv&limit=5&offset=3")).text)
    assert [row[0] for row in csv_page[1:]] == phones[3:8]
    every = parse_csv((await gw.http.get(f"/contacts/{TOKEN}?format=csv&limit=all")).text)
    assert [row[0] for row in every[1:]] == phones
    default_csv = parse_csv((await gw.http.get(f"/contacts/{TOKEN}?format=csv")).text)
    assert len(default_csv) == 26  # default limit 100


async def test_bad_queries_are_invalid_request(gw: Gateway) -> None:
    """limit above 1000 or below 1, non-numbers, a negative offset, an unknown format, limit=all as JSON."""
    await gw.pair()
    for query in (
        "?limit=1001",
        "?limit=0",
        "?limit=ten",
        "?offset=-1",
        "?offset=1.5",
        "?format=xml",
        "?limit=all",
        "?limit=all&format=json",
        "?format=csv&limit=-5",
    ):
        r = await gw.http.get(f"/contacts/{TOKEN}{query}")
        assert error(r) == (400, "INVALID_REQUEST"), query
    assert (await contacts(gw, "?limit=1000"))["limit"] == 1000
    assert error(await gw.http.get("/contacts/12345?format=xml")) == (400, "INVALID_REQUEST")  # params first


async def test_unknown_token_and_bad_token(gw: Gateway) -> None:
    """No device and no contacts → DEVICE_NOT_FOUND (JSON and CSV); a bad token → INVALID_PHONE."""
    for query in ("", "?format=csv", "?format=csv&limit=all"):
        assert error(await gw.http.get(f"/contacts/{OTHER}{query}")) == (404, "DEVICE_NOT_FOUND")
    assert error(await gw.http.get("/contacts/12345")) == (400, "INVALID_PHONE")


async def test_contacts_outlive_their_device_unless_purged(gw: Gateway) -> None:
    """DELETE /devices keeps contacts readable; ?purge=true removes them and the token becomes unknown."""
    await gw.pair()
    await incoming(gw, ALI, "Ali")
    await gw.until(lambda: _total_is(gw, 1))
    assert (await gw.http.delete(f"/devices/{TOKEN}")).status_code == 200
    assert [c["phone"] for c in (await contacts(gw))["contacts"]] == [ALI]
    assert parse_csv((await gw.http.get(f"/contacts/{TOKEN}?format=csv")).text)[1][0] == ALI
    await gw.pair()
    assert (await gw.http.delete(f"/devices/{TOKEN}?purge=true")).status_code == 200
    assert error(await gw.http.get(f"/contacts/{TOKEN}")) == (404, "DEVICE_NOT_FOUND")


async def test_an_account_never_sees_another_accounts_contacts(gw: Gateway) -> None:
    """Alice's contacts (device deleted) answer DEVICE_NOT_FOUND to Bob, also after Bob takes the token."""
    tenants = Tenants(gw)
    try:
        alice, bob = await tenants.signup("alice"), await tenants.signup("bob")
        assert (await alice.http.post("/devices", json={"token": TOKEN})).status_code == 200
        await gw.post(f"/sandbox/devices/{TOKEN}/scan")
        await incoming(gw, ALI, "Ali")
        await gw.until(lambda: _total_is(gw, 1))
        assert (await alice.http.delete(f"/devices/{TOKEN}")).status_code == 200
        assert (await alice.http.get(f"/contacts/{TOKEN}")).json()["data"]["total"] == 1
        for query in ("", "?format=csv&limit=all"):
            assert error(await bob.http.get(f"/contacts/{TOKEN}{query}")) == (404, "DEVICE_NOT_FOUND")
        assert (await bob.http.post("/devices", json={"token": TOKEN})).status_code == 200
        await gw.post(f"/sandbox/devices/{TOKEN}/scan")
        assert (await bob.http.get(f"/contacts/{TOKEN}")).json()["data"]["total"] == 0
        assert parse_csv((await bob.http.get(f"/contacts/{TOKEN}?format=csv")).text) == [
            ["phone", "name", "source", "first_seen", "last_seen"]
        ]
    finally:
        await tenants.aclose()


async def test_messages_received_survives_a_restart(gateway_factory: Any, tmp_path: Path) -> None:
    """messagesReceived counted by the pump is the same after a restart on the same DATA_DIR."""
    first: Gateway = await gateway_factory(data_dir=tmp_path)
    await first.pair()
    for i in range(3):
        await incoming(first, ALI, "Ali", f"m{i}")
    await first.until(lambda: first.rt.devices.get(TOKEN).row.messages_received == 3)
    await first.stop()
    gw: Gateway = await gateway_factory(data_dir=tmp_path)
    state = (await gw.http.get(f"/devices/{TOKEN}")).json()["data"]
    assert state["stats"]["messagesReceived"] == 3
    assert (await contacts(gw))["total"] == 1

"""POST /messages end to end through the sandbox: ids, order, checks, Idempotency-Key."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.drivers.base import FencedError
from tests.support.accounts import Tenants
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.poll import until

MESSAGE_ID = re.compile(r"^3EB0[0-9A-F]{16}$")
PEER = "60171222333"
PEER_JID = f"{PEER}@s.whatsapp.net"


async def sent(gw: Gateway, token: str = TOKEN) -> list[dict[str, str]]:
    r = await gw.http.get(f"/sandbox/devices/{token}/sent")
    assert r.status_code == 200, r.text
    messages: list[dict[str, str]] = r.json()["data"]["messages"]
    return messages


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def test_send_with_leading_zero_to(gw: Gateway) -> None:
    """`to` "017-122 2333" goes to 60171222333@s.whatsapp.net; the id is 3EB0 + 16 hex; messagesSent counts."""
    await gw.pair()
    r = await gw.post("/messages", {"token": "012-345 6789", "to": "017-122 2333", "text": "Hello 👋"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert set(data) == {"messageId", "timestamp"}
    assert MESSAGE_ID.match(data["messageId"])
    assert data["timestamp"].endswith("Z")
    assert await sent(gw) == [
        {"id": data["messageId"], "to": PEER_JID, "type": "text", "text": "Hello 👋", "timestamp": data["timestamp"]}
    ]
    state = (await gw.http.get(f"/devices/{TOKEN}")).json()["data"]
    assert state["stats"]["messagesSent"] == 1


async def test_send_to_a_group_jid(gw: Gateway) -> None:
    """A group JID is accepted as `to` and reaches the driver unchanged."""
    await gw.pair()
    r = await gw.post("/messages", {"token": TOKEN, "to": "120363000000000001@g.us", "text": "team"})
    assert r.status_code == 200, r.text
    assert (await sent(gw))[0]["to"] == "120363000000000001@g.us"


async def test_text_of_exactly_65536_characters_is_sent(gw: Gateway) -> None:
    """The limit is inclusive: 65,536 characters go out whole."""
    await gw.pair()
    text = "x" * 65_536
    r = await gw.post("/messages", {"token": TOKEN, "to": PEER, "text": text})
    assert r.status_code == 200, r.text
    assert (await sent(gw))[0]["text"] == text


BAD_INPUTS: list[tuple[str, Any, tuple[int, str]]] = [
    ("no body", None, (400, "INVALID_REQUEST")),
    ("not JSON", b"{token: 1", (400, "INVALID_REQUEST")),
    ("array body", [TOKEN, PEER, "hi"], (400, "INVALID_REQUEST")),
    ("string body", "hello", (400, "INVALID_REQUEST")),
    ("token a number", {"token": 60123456789, "to": PEER, "text": "hi"}, (400, "INVALID_REQUEST")),
    ("to a number", {"token": TOKEN, "to": 60171222333, "text": "hi"}, (400, "INVALID_REQUEST")),
    ("text an object", {"token": TOKEN, "to": PEER, "text": {"body": "hi"}}, (400, "INVALID_REQUEST")),
    ("text a boolean", {"token": TOKEN, "to": PEER, "text": True}, (400, "INVALID_REQUEST")),
    ("missing token", {"to": PEER, "text": "hi"}, (400, "MISSING_TOKEN")),
    ("blank token", {"token": "  ", "to": PEER, "text": "hi"}, (400, "MISSING_TOKEN")),
    ("token before phone", {"to": "nope", "text": ""}, (400, "MISSING_TOKEN")),
    ("bad token", {"token": "60111111111", "to": PEER, "text": "hi"}, (400, "INVALID_PHONE")),
    ("missing to", {"token": TOKEN, "text": "hi"}, (400, "INVALID_PHONE")),
    ("empty to", {"token": TOKEN, "to": "", "text": "hi"}, (400, "INVALID_PHONE")),
    ("bad to", {"token": TOKEN, "to": "12345", "text": "hi"}, (400, "INVALID_PHONE")),
    ("bad jid", {"token": TOKEN, "to": "60171222333@lid", "text": "hi"}, (400, "INVALID_PHONE")),
    ("phone before text", {"token": TOKEN, "to": "x", "text": "   "}, (400, "INVALID_PHONE")),
    ("missing text", {"token": TOKEN, "to": PEER}, (400, "INVALID_MESSAGE")),
    ("empty text", {"token": TOKEN, "to": PEER, "text": ""}, (400, "INVALID_MESSAGE")),
    ("blank text", {"token": TOKEN, "to": PEER, "text": " \n\t "}, (400, "INVALID_MESSAGE")),
    ("text too long", {"token": TOKEN, "to": PEER, "text": "x" * 65_537}, (400, "INVALID_MESSAGE")),
    ("text before device", {"token": "60127654321", "to": PEER, "text": ""}, (400, "INVALID_MESSAGE")),
    ("unknown device", {"token": "60127654321", "to": PEER, "text": "hi"}, (404, "DEVICE_NOT_FOUND")),
    ("disconnected device", {"token": OTHER, "to": PEER, "text": "hi"}, (500, "DEVICE_NOT_CONNECTED")),
]


async def test_every_bad_input_gets_the_first_failing_check(gw: Gateway) -> None:
    """Each bad input of the table answers the contract's code, in the §2 order, and sends nothing."""
    await gw.pair()
    await gw.post("/devices", {"token": OTHER})  # exists, pairing: not connected
    for case, body, expected in BAD_INPUTS:
        if isinstance(body, bytes):
            r = await gw.http.post("/messages", content=body, headers={"Content-Type": "application/json"})
        elif body is None:
            r = await gw.http.post("/messages")
        else:
            r = await gw.post("/messages", body)
        assert error(r) == expected, (case, r.text)
        assert r.json()["success"] is False and r.json()["error"]["message"], case
    assert await sent(gw) == []


async def test_malformed_idempotency_key_is_invalid_request(gw: Gateway) -> None:
    """An Idempotency-Key over 255 characters or with spaces is INVALID_REQUEST."""
    await gw.pair()
    for key in ("k" * 256, "has space", ""):
        r = await gw.post("/messages", {"token": TOKEN, "to": PEER, "text": "hi"}, headers={"Idempotency-Key": key})
        assert error(r) == (400, "INVALID_REQUEST"), key
    assert await sent(gw) == []


async def test_200_concurrent_sends_leave_in_order_one_at_a_time(gateway_factory: Any) -> None:
    """200 concurrent sends all go out once; the driver sees them one at a time (typing on/off never
    interleaves) and in the order of their answers' timestamps."""
    gw: Gateway = await gateway_factory(typing_delay_ms=1)
    await gw.pair()
    texts = [f"m{i:03d}" for i in range(200)]
    answers = await asyncio.gather(*(gw.post("/messages", {"token": TOKEN, "to": PEER, "text": t}) for t in texts))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200][:1]
    out = await sent(gw)
    assert sorted(m["text"] for m in out) == texts
    ids = [m["id"] for m in out]
    assert sorted(ids) == sorted(r.json()["data"]["messageId"] for r in answers)
    by_time = sorted(answers, key=lambda r: r.json()["data"]["timestamp"])
    assert [m["timestamp"] for m in out] == [r.json()["data"]["timestamp"] for r in by_time]
    typing = gw.rt.devices.get(TOKEN).driver.typing
    assert list(typing) == [(PEER_JID, on) for _ in range(200) for on in (True, False)]


async def test_sends_leave_in_the_order_they_were_accepted(gateway_factory: Any) -> None:
    """Requests accepted one after another (each queued before the next arrives) reach WhatsApp in that order."""
    gw: Gateway = await gateway_factory(typing_delay_ms=30)
    await gw.pair()
    lock = gw.rt.devices.get(TOKEN).send_lock
    tasks = []
    for i in range(12):
        body = {"token": TOKEN, "to": PEER, "text": f"n{i:02d}"}
        tasks.append(asyncio.create_task(gw.post("/messages", body)))
        if i == 0:
            await gw.until(lambda: lock.locked())
        else:  # request i is queued behind the lock before request i+1 is sent
            await gw.until(lambda n=i: len(getattr(lock, "_waiters", None) or ()) >= n or lock_done(tasks, n))
    await asyncio.gather(*tasks)
    assert [m["text"] for m in await sent(gw)] == [f"n{i:02d}" for i in range(12)]


def lock_done(tasks: list[asyncio.Task[httpx.Response]], n: int) -> bool:
    """Enough earlier sends already finished that request n cannot be behind them."""
    return sum(t.done() for t in tasks[:n]) >= 1 and tasks[n].done()


async def test_a_busy_device_does_not_hold_up_another(gateway_factory: Any) -> None:
    """While one device works through a queue of slow (typing) sends, another device's send completes."""
    gw: Gateway = await gateway_factory(typing_delay_ms=100)
    await gw.pair(TOKEN)
    await gw.pair(OTHER)
    busy = [asyncio.create_task(gw.post("/messages", {"token": TOKEN, "to": PEER, "text": f"q{i}"})) for i in range(10)]
    await gw.until(lambda: gw.rt.devices.get(TOKEN).send_lock.locked())
    r = await gw.post("/messages", {"token": OTHER, "to": PEER, "text": "quick"})
    assert r.status_code == 200
    assert not all(t.done() for t in busy)
    assert all(r.status_code == 200 for r in await asyncio.gather(*busy))


async def test_idempotent_repeat_returns_the_first_answer_and_sends_nothing(gw: Gateway) -> None:
    """The same Idempotency-Key and body → the first `data`, one message at the driver."""
    await gw.pair()
    body = {"token": TOKEN, "to": PEER, "text": "pay 10"}
    first = await gw.post("/messages", body, headers={"Idempotency-Key": "order-1"})
    again = await gw.post("/messages", {**body, "to": "017-122 2333"}, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == again.status_code == 200
    assert again.json()["data"] == first.json()["data"]
    assert (first.headers["Idempotent-Replayed"], again.headers["Idempotent-Replayed"]) == ("false", "true")
    assert len(await sent(gw)) == 1
    other_key = await gw.post("/messages", body, headers={"Idempotency-Key": "order-2"})
    assert other_key.json()["data"]["messageId"] != first.json()["data"]["messageId"]
    assert len(await sent(gw)) == 2


async def test_same_key_with_another_body_is_invalid_request(gw: Gateway) -> None:
    """Reusing a key for a different message is INVALID_REQUEST and sends nothing."""
    await gw.pair()
    h = {"Idempotency-Key": "k-1"}
    assert (await gw.post("/messages", {"token": TOKEN, "to": PEER, "text": "a"}, headers=h)).status_code == 200
    r = await gw.post("/messages", {"token": TOKEN, "to": PEER, "text": "b"}, headers=h)
    assert error(r) == (400, "INVALID_REQUEST")
    assert [m["text"] for m in await sent(gw)] == ["a"]


async def test_concurrent_repeats_send_once(gw: Gateway) -> None:
    """Ten simultaneous requests with one key → one message, ten identical answers."""
    await gw.pair()
    body = {"token": TOKEN, "to": PEER, "text": "once"}
    answers = await asyncio.gather(
        *(gw.post("/messages", body, headers={"Idempotency-Key": "burst"}) for _ in range(10))
    )
    assert {r.status_code for r in answers} == {200}
    assert len({r.json()["data"]["messageId"] for r in answers}) == 1
    assert len(await sent(gw)) == 1


async def test_a_failed_send_is_not_remembered(gw: Gateway) -> None:
    """A key whose first try failed (device not connected) sends on the retry."""
    await gw.post("/devices", {"token": TOKEN})
    body = {"token": TOKEN, "to": PEER, "text": "later"}
    r = await gw.post("/messages", body, headers={"Idempotency-Key": "retry-me"})
    assert error(r) == (500, "DEVICE_NOT_CONNECTED")
    await gw.post(f"/sandbox/devices/{TOKEN}/scan")
    r = await gw.post("/messages", body, headers={"Idempotency-Key": "retry-me"})
    assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "false"
    assert len(await sent(gw)) == 1


async def test_a_send_refused_by_the_session_stores_fence_answers_device_moving(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver reports that the session store refused its write (another node holds the device now,
    CONTRACT §14): 503 DEVICE_MOVING with Retry-After, as for any device changing hands — never a 500,
    and no failed message recorded for it here."""
    await gw.pair()
    driver = gw.rt.devices.get(TOKEN).driver

    async def fenced(to: str, text: str) -> None:
        raise FencedError("this node no longer holds the device: pq: wa-gateway fence: node n1 …")

    monkeypatch.setattr(driver, "send_text", fenced)
    r = await gw.post("/messages", {"token": TOKEN, "to": PEER, "text": "stale"})
    assert error(r) == (503, "DEVICE_MOVING")
    assert int(r.headers["Retry-After"]) >= 1
    assert (await gw.http.get(f"/devices/{TOKEN}/messages")).json()["data"]["messages"] == []


async def test_idempotency_survives_a_restart(gateway_factory: Any, tmp_path: Path) -> None:
    """After a restart a repeat still gets the first answer and nothing is sent again."""
    first_gw: Gateway = await gateway_factory(data_dir=tmp_path)
    await first_gw.pair()
    body = {"token": TOKEN, "to": PEER, "text": "invoice #7"}
    first = await first_gw.post("/messages", body, headers={"Idempotency-Key": "inv-7"})
    assert first.status_code == 200
    await first_gw.stop()
    gw: Gateway = await gateway_factory(data_dir=tmp_path)
    await gw.until(lambda: gw.rt.devices.get(TOKEN).status == "connected")
    again = await gw.post("/messages", body, headers={"Idempotency-Key": "inv-7"})
    assert again.json()["data"] == first.json()["data"]
    # The simulated WhatsApp outlives the restart (as the real one does): it holds the first send only.
    assert [m["id"] for m in await sent(gw)] == [first.json()["data"]["messageId"]]


async def test_idempotency_keys_are_per_caller(gw: Gateway) -> None:
    """An account using the admin's key string gets its own answer (keys are scoped per caller)."""
    tenants = Tenants(gw)
    try:
        alice = await tenants.signup("alice")
        r = await alice.http.post("/devices", json={"token": OTHER})
        assert r.status_code == 200, r.text
        await gw.post(f"/sandbox/devices/{OTHER}/scan")
        await gw.pair(TOKEN)
        h = {"Idempotency-Key": "shared-name"}
        mine = await gw.post("/messages", {"token": TOKEN, "to": PEER, "text": "admin"}, headers=h)
        theirs = await alice.http.post("/messages", json={"token": OTHER, "to": PEER, "text": "alice"}, headers=h)
        assert mine.status_code == theirs.status_code == 200, theirs.text
        assert theirs.headers["Idempotent-Replayed"] == "false"
        assert [m["text"] for m in await sent(gw, OTHER)] == ["alice"]
    finally:
        await tenants.aclose()


async def test_idempotency_keys_expire_after_24_hours(gw: Gateway) -> None:
    """A key older than 24 h is forgotten: the same request sends again (clock injected)."""
    await gw.pair()
    service = gw.rt.idempotency
    now = [1_000_000.0]
    service.clock = lambda: now[0]
    body = {"token": TOKEN, "to": PEER, "text": "daily"}
    h = {"Idempotency-Key": "day"}
    await gw.post("/messages", body, headers=h)
    now[0] += 24 * 3600 - 1
    assert (await gw.post("/messages", body, headers=h)).headers["Idempotent-Replayed"] == "true"
    now[0] += 2
    assert (await gw.post("/messages", body, headers=h)).headers["Idempotent-Replayed"] == "false"
    assert len(await sent(gw)) == 2
    assert await gw.rt.store.prune_idempotency(now[0] + 1) == 1


async def test_send_counters_are_written_behind_and_survive_restarts(gateway_factory: Any, tmp_path: Path) -> None:
    """A send does not wait for the disk: the store holds its count within STATS_FLUSH_S, in one
    write for the burst; a graceful stop right after sends loses none of them."""
    first: Gateway = await gateway_factory(data_dir=tmp_path)
    await first.pair()
    store = first.rt.store
    for i in range(4):
        assert (await first.post("/messages", {"token": TOKEN, "to": PEER, "text": f"m{i}"})).status_code == 200

    async def saved() -> int:
        row = await store.get_device(TOKEN)
        return row.messages_sent if row else -1

    await first.until(lambda: _equals(saved(), 4))
    for i in range(3):  # stopped before the next flush is due
        assert (await first.post("/messages", {"token": TOKEN, "to": PEER, "text": f"n{i}"})).status_code == 200
    await first.stop()
    again: Gateway = await gateway_factory(data_dir=tmp_path)
    state = (await again.http.get(f"/devices/{TOKEN}")).json()["data"]
    assert state["stats"]["messagesSent"] == 7


async def _equals(value: Any, expected: int) -> bool:
    return bool(await value == expected)


async def test_sends_wait_for_the_store_when_its_backlog_is_at_high_water(gw: Gateway) -> None:
    """A store that cannot keep up (here: its writer held) slows sends to its pace instead of queueing
    without bound: a send waits, nothing is sent meanwhile, and it goes once the backlog has drained."""
    import threading

    await gw.pair()
    db = gw.rt.store.db
    before = len(await sent(gw))
    gate = threading.Event()
    held = db.submit(lambda conn: gate.wait(10))
    db.high_water, db.low_water = 1, 0
    try:
        sending = asyncio.create_task(gw.post("/messages", {"token": TOKEN, "to": PEER, "text": "later"}))
        await until(lambda: db._drained is not None, 5, "the send waiting for the store's room")
        assert not sending.done()
        assert len(await sent(gw)) == before
    finally:
        gate.set()
    async with asyncio.timeout(10):
        r = await sending
        await held
    assert r.status_code == 200, r.text
    assert [m["text"] for m in await sent(gw)][-1] == "later"

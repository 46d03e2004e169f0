"""The bus (gateway/cluster/bus.py) against a real NATS server."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from gateway.cluster.bus import Bus, BusUnavailable, Headers
from tests.support.bus import synced
from tests.support.net import HOST, free_port
from tests.support.poll import until

RUN = secrets.token_hex(4)  # subjects of this run only: other runs may share the NATS server


@pytest.fixture
async def buses(nats_url: str) -> list[Bus]:
    started = [Bus(nats_url, "a"), Bus(nats_url, "b")]
    for bus in started:
        await bus.start()
        assert await bus.wait_connected(10)
    yield started  # type: ignore[misc]
    for bus in started:
        await bus.stop()


async def test_publish_reaches_a_subscriber_on_another_connection_in_order(buses: list[Bus]) -> None:
    a, b = buses
    got: list[bytes] = []
    handle = await b.subscribe("t" + RUN + ".order.>", lambda data, headers: got.append(data))
    await synced(b)
    for i in range(500):
        assert await a.publish("t" + RUN + ".order.x", str(i).encode())
    try:
        await until(lambda: len(got) >= 500, 10, "500 messages")
    except AssertionError as late:
        raise AssertionError(f"{len(got)} of 500 arrived, the last {got[-3:]}") from late
    assert got == [str(i).encode() for i in range(500)]
    await b.unsubscribe(handle)
    await synced(b)
    await a.publish("t" + RUN + ".order.x", b"late")
    await synced(a)
    await synced(b)
    assert len(got) == 500


async def test_request_reply_and_no_responders(buses: list[Bus]) -> None:
    a, b = buses

    async def echo(data: bytes, headers: Headers | None) -> tuple[bytes, Headers | None]:
        return data.upper(), {"X-Node": "b"}

    await b.serve("t" + RUN + ".echo", echo, queue="q")
    await synced(b)
    msg = await a.request("t" + RUN + ".echo", b"hi", timeout=2)
    assert msg.data == b"HI"
    assert msg.headers == {"X-Node": "b"}
    started = time.perf_counter()
    with pytest.raises(BusUnavailable) as err:
        await a.request("t" + RUN + ".nobody", b"", timeout=5)
    assert err.value.why == "no_responders"
    assert time.perf_counter() - started < 1.0  # told at once, not after the timeout
    assert a.requests_failed == 1


async def test_a_queue_group_answers_each_request_once(buses: list[Bus]) -> None:
    a, b = buses
    calls: list[str] = []

    def member(name: str):  # type: ignore[no-untyped-def]
        async def handler(data: bytes, headers: Headers | None) -> tuple[bytes, Headers | None]:
            calls.append(name)
            return name.encode(), None

        return handler

    await a.serve("t" + RUN + ".q", member("a"), queue="g")
    await b.serve("t" + RUN + ".q", member("b"), queue="g")
    for bus in buses:
        await synced(bus)
    for _ in range(20):
        await a.request("t" + RUN + ".q", b"", timeout=2)
    assert len(calls) == 20


async def test_a_slow_request_does_not_hold_up_the_next(buses: list[Bus]) -> None:
    a, b = buses
    release = asyncio.Event()

    async def handler(data: bytes, headers: Headers | None) -> tuple[bytes, Headers | None]:
        if data == b"slow":
            await release.wait()
        return data, None

    await b.serve("t" + RUN + ".slow", handler)
    await synced(b)
    slow = asyncio.create_task(a.request("t" + RUN + ".slow", b"slow", timeout=10))
    fast = await a.request("t" + RUN + ".slow", b"fast", timeout=5)  # answered while the slow one waits
    assert fast.data == b"fast"
    assert not slow.done()
    release.set()
    assert (await slow).data == b"slow"


async def test_a_request_that_nobody_answers_in_time_is_a_timeout(buses: list[Bus]) -> None:
    a, b = buses
    never = asyncio.Event()

    async def handler(data: bytes, headers: Headers | None) -> tuple[bytes, Headers | None]:
        await never.wait()
        return b"", None

    await b.serve("t" + RUN + ".hang", handler)
    await synced(b)
    with pytest.raises(BusUnavailable) as err:
        await a.request("t" + RUN + ".hang", b"", timeout=0.2)
    assert err.value.why == "timeout"
    never.set()


async def test_without_a_server_the_bus_is_down_and_says_so_at_once() -> None:
    bus = Bus(f"nats://{HOST}:{free_port()}", "lonely")
    await bus.start()
    try:
        assert not await bus.wait_connected(0.3)
        assert not bus.connected
        assert not await bus.publish("t" + RUN + ".x", b"lost")
        assert bus.dropped == 1
        with pytest.raises(BusUnavailable) as err:
            await bus.request("t" + RUN + ".x", b"", timeout=5)
        assert err.value.why == "disconnected"
        handle = await bus.subscribe("t" + RUN + ".x", lambda data, headers: None)  # kept for when it connects
        await bus.unsubscribe(handle)
    finally:
        await bus.stop()  # stops the connecting task: it never reached a server


async def test_subscriptions_made_before_the_connection_apply_once_it_is_up(nats_url: str) -> None:
    late = Bus(nats_url, "late")
    got: list[bytes] = []
    await late.subscribe("t" + RUN + ".early", lambda data, headers: got.append(data))  # before start
    other = Bus(nats_url, "other")
    await late.start()
    await other.start()
    try:
        assert await late.wait_connected(10) and await other.wait_connected(10)
        await synced(late)
        await other.publish("t" + RUN + ".early", b"x")
        await until(lambda: got == [b"x"])
    finally:
        await other.stop()
        await late.stop()

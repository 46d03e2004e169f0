"""WhatsApp's ``StreamReplaced`` (another client opened the same session) is its own event, never a
reconnect: reconnecting would take the session back and the two holders would flap forever
(SCALE-OUT.md; across two gateway nodes, or a copied data directory on another machine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import neonize.proto.Neonize_pb2 as nz
import pytest

from gateway.drivers.base import Disconnected, DriverOptions, Replaced
from gateway.drivers.neonize.driver import INT_TO_EVENT, NeonizeDriver, _Attempt
from tests.support.errors import assert_error
from tests.support.gateway import Gateway

TOKEN = "60123456789"


@pytest.fixture
async def driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NeonizeDriver]:
    d = NeonizeDriver(TOKEN, DriverOptions(data_dir=tmp_path))
    monkeypatch.setattr(d, "_stop_go_id", lambda uuid: None)  # no Go client was started for this attempt
    yield d
    await d.close()


def _attempt_under_way(d: NeonizeDriver) -> _Attempt:
    loop = asyncio.get_running_loop()
    attempt = _Attempt(
        uuid=f"{TOKEN}.1".encode(),
        method="qr",
        started=loop.create_future(),
        ready=loop.create_future(),
        ended=loop.create_future(),
        under_way=True,
    )
    with d._lock:
        d._attempt = attempt
        d._connected = True
    return attempt


def _go_event(event: Any) -> tuple[int, bytes]:
    code = next(code for code, kind in INT_TO_EVENT.items() if kind is type(event))
    return code, event.SerializeToString()


async def test_neonize_reports_stream_replaced_as_replaced(driver: NeonizeDriver) -> None:
    events = driver.events()
    attempt = _attempt_under_way(driver)
    driver._guard(driver._on_event, attempt, *_go_event(nz.StreamReplaced()))  # as Go's callback would
    event = await asyncio.wait_for(anext(events), 5)
    assert isinstance(event, Replaced) and not isinstance(event, Disconnected)
    assert "another connection" in event.reason
    assert not driver._is_current(attempt) and not driver._connected  # this connection is over


async def test_a_replaced_attempt_that_was_not_under_way_fails_the_connect(driver: NeonizeDriver) -> None:
    driver.events()
    attempt = _attempt_under_way(driver)
    attempt.under_way = False  # connect() is still waiting: it gets the reason as its error
    driver._on_event(attempt, *_go_event(nz.StreamReplaced()))
    assert await asyncio.wait_for(attempt.ready, 5) == Replaced().reason


def _reconnect_scheduled(gw: Gateway) -> bool:
    task = gw.rt.devices.get(TOKEN).reconnector._task
    return task is not None and not task.done()


async def test_a_replaced_device_is_disconnected_and_not_reconnected(gw: Gateway) -> None:
    await gw.pair(TOKEN)
    r = await gw.post(f"/sandbox/devices/{TOKEN}/replace")
    assert r.status_code == 200, r.text
    state = r.json()["data"]
    assert state["status"] == "disconnected" and state["reconnecting"] is False
    assert "another connection" in state["lastError"]
    assert not _reconnect_scheduled(gw)  # where a drop schedules one (below)
    # Asked explicitly, it connects again: the session was kept.
    r = await gw.post("/devices", {"token": TOKEN})
    assert r.status_code == 200, r.text
    await gw.until(lambda: gw.rt.devices.get(TOKEN).row.status == "connected")
    # The control: a network drop on the same device is reconnected.
    r = await gw.post(f"/sandbox/devices/{TOKEN}/drop")
    assert r.json()["data"]["reconnecting"] is True


async def test_replace_needs_a_connected_device(gw: Gateway) -> None:
    await gw.post("/devices", {"token": TOKEN})
    r = await gw.post(f"/sandbox/devices/{TOKEN}/replace")
    assert_error(r, 500, "DEVICE_NOT_CONNECTED")

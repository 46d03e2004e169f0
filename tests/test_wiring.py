"""The composition root: one typed Runtime, started in dependency order and stopped in reverse."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3

import pytest

from gateway.app import build_runtime
from gateway.devices import DeviceManager
from gateway.settings import Settings
from gateway.webhooks import Dispatcher


async def test_the_runtime_is_frozen_and_its_parts_know_each_other(settings: Settings) -> None:
    """Collaborators arrive through constructors: nothing is patched in after construction."""
    async with contextlib.AsyncExitStack() as stack:
        rt = await build_runtime(settings, stack)
        with pytest.raises(dataclasses.FrozenInstanceError):
            rt.devices = rt.devices  # type: ignore[misc]
        assert rt.devices.wake_dispatcher == rt.dispatcher.wake
        assert rt.devices.router is rt.router
        assert rt.accounts.devices is rt.devices
        assert rt.auth.resolver == rt.accounts.resolve
        assert rt.metrics.dispatcher is rt.dispatcher


async def test_stop_runs_in_reverse_order_and_a_failing_stop_does_not_keep_the_store_open(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    devices_stop, dispatcher_stop = DeviceManager.stop, Dispatcher.stop

    async def stop_devices(self: DeviceManager) -> None:
        order.append("devices")
        await devices_stop(self)

    async def broken_dispatcher_stop(self: Dispatcher) -> None:
        order.append("dispatcher")
        await dispatcher_stop(self)
        raise RuntimeError("stop failed")

    monkeypatch.setattr(DeviceManager, "stop", stop_devices)
    monkeypatch.setattr(Dispatcher, "stop", broken_dispatcher_stop)
    async with contextlib.AsyncExitStack() as stack:
        rt = await build_runtime(settings, stack)
    assert order == ["devices", "dispatcher"]
    with pytest.raises(sqlite3.ProgrammingError):  # closed after both, despite the failure
        await rt.store.db.execute("CREATE TABLE t (x)")


async def test_a_failed_start_closes_what_had_started(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(self: DeviceManager) -> None:
        raise RuntimeError("cannot restore")

    stopped: list[bool] = []
    dispatcher_stop = Dispatcher.stop

    async def stop(self: Dispatcher) -> None:
        stopped.append(True)
        await dispatcher_stop(self)

    monkeypatch.setattr(DeviceManager, "start", refuse)
    monkeypatch.setattr(Dispatcher, "stop", stop)
    with pytest.raises(RuntimeError, match="cannot restore"):
        async with contextlib.AsyncExitStack() as stack:
            await build_runtime(settings, stack)
    assert stopped == [True]

"""The driver seam's contract, run against every driver where WhatsApp's servers are not needed.

Like uvicorn runs each test over every protocol implementation, each test here
runs over both drivers: what the gateway relies on must hold for the sandbox
and for neonize alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.drivers import make_driver
from gateway.drivers.base import (
    CheckError,
    Driver,
    DriverOptions,
    Location,
    NotConnectedError,
    NotFoundError,
    OutgoingMessage,
    Poll,
    Reaction,
    RefusedError,
    SendError,
)

TOKEN = "60123456789"


@pytest.fixture(params=["sandbox", "neonize"])
async def driver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Driver]:
    d = make_driver(request.param, TOKEN, DriverOptions(data_dir=tmp_path))
    try:
        yield d
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(d.close(), 10)


def test_implements_the_protocol(driver: Driver) -> None:
    """Every driver satisfies the Driver protocol and names its session file <token>.db."""
    assert isinstance(driver, Driver)
    assert driver.token == TOKEN
    assert driver.session_path.name == f"{TOKEN}.db"


def test_a_fresh_session_is_not_paired(driver: Driver) -> None:
    """No session file yet → not paired (a restart would need a scan)."""
    assert driver.is_paired() is False


async def test_calls_that_need_a_connection_raise_not_connected(driver: Driver) -> None:
    """send / check / groups before connecting raise NotConnectedError (never a raw library error)."""
    with pytest.raises(NotConnectedError):
        await driver.send_text(f"{TOKEN}@s.whatsapp.net", "hi")
    with pytest.raises((NotConnectedError, CheckError)):
        await driver.is_on_whatsapp(["60198765432"])
    with pytest.raises((NotConnectedError, CheckError)):
        await driver.joined_groups()


async def test_message_actions_and_groups_need_a_connection(driver: Driver) -> None:
    """Every kind of send, each message action and each group call raises NotConnectedError when offline."""
    chat, group = f"{TOKEN}@s.whatsapp.net", "120363000000000001@g.us"
    calls = [
        driver.send(chat, OutgoingMessage(text="hi")),
        driver.send(chat, OutgoingMessage(location=Location(1.0, 2.0))),
        driver.send(chat, OutgoingMessage(poll=Poll("q", ("a", "b")))),
        driver.send(chat, OutgoingMessage(reaction=Reaction("3EB0A", "👍"))),
        driver.edit(chat, "3EB0A", "new"),
        driver.revoke(chat, "3EB0A"),
        driver.mark_read(chat, ["3EB0A"], None),
        driver.send_presence(chat, "composing"),
        driver.create_group("g", ["60198765432@s.whatsapp.net"]),
        driver.group_info(group),
        driver.update_participants(group, "add", ["60198765432@s.whatsapp.net"]),
        driver.invite_link(group),
        driver.leave_group(group),
    ]
    for call in calls:
        with pytest.raises(NotConnectedError):
            await call


async def test_disconnect_logout_close_are_idempotent(driver: Driver) -> None:
    """disconnect, logout and close may be called when not connected, twice, without raising."""
    await driver.disconnect()
    await driver.disconnect()
    await driver.logout()
    await driver.logout()
    await driver.close()
    await driver.close()
    assert not driver.session_path.exists()


async def test_events_is_an_async_stream(driver: Driver) -> None:
    """events() is an async iterator that waits (does not end) while nothing happens."""
    stream = driver.events()
    nxt = asyncio.ensure_future(stream.__anext__())
    done, _ = await asyncio.wait({nxt}, timeout=0.05)
    assert not done
    nxt.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await nxt


def test_errors_share_one_base() -> None:
    """The seam's exceptions form one tree under DriverError."""
    from gateway.drivers.base import ConnectError, DriverError

    for exc in (ConnectError, NotConnectedError, SendError, CheckError, NotFoundError, RefusedError):
        assert issubclass(exc, DriverError)

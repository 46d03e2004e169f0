"""The neonize driver against the real neonize library, with no internet.

Nothing is mocked: connects really dial (and fail: this machine cannot resolve
web.whatsapp.com). To hold dials open, some tests route the driver through a
local "proxy" that accepts connections and never answers, so whatsmeow sits
in its dial inside Go exactly as it would behind a dead network; hanging up
makes those dials fail at once.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.drivers.base import ConnectError, Driver, DriverOptions, NotConnectedError
from gateway.drivers.neonize import NeonizeDriver
from tests.support.poll import until
from tests.support.silent_proxy import SilentProxy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_driver(tmp_path: Path) -> Callable[..., NeonizeDriver]:
    def make(token: str = "60123456789", **extra: object) -> NeonizeDriver:
        return NeonizeDriver(token, DriverOptions(data_dir=tmp_path, extra=dict(extra)))

    return make


@pytest.fixture
async def drivers() -> AsyncIterator[list[NeonizeDriver]]:
    """Drivers made by a test; all closed afterwards."""
    made: list[NeonizeDriver] = []
    yield made
    await asyncio.gather(*(d.close() for d in made))


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    await until(predicate, timeout, what)


def connection_threads(prefix: str = "neonize-conn-") -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def test_driver_satisfies_the_protocol(make_driver: Callable[..., NeonizeDriver]) -> None:
    driver = make_driver()
    assert isinstance(driver, Driver)
    assert driver.session_path == driver.session_path.parent / "60123456789.db"


async def test_connect_offline_raises_connect_error_with_the_dial_error(
    make_driver: Callable[..., NeonizeDriver], drivers: list[NeonizeDriver]
) -> None:
    """With no internet, connect() fails fast with the dial error, not a hang."""
    driver = make_driver()
    drivers.append(driver)
    started = time.monotonic()
    with pytest.raises(ConnectError) as failure:
        await driver.connect("qr")
    assert time.monotonic() - started < 9  # the DNS failure is usually instant, 5 s on a resolver timeout
    assert str(failure.value).startswith("failed to dial web.whatsapp.com:443: ")
    assert not driver.is_paired()


async def test_without_preflight_whatsmeow_reports_its_own_dial_error(
    make_driver: Callable[..., NeonizeDriver], drivers: list[NeonizeDriver]
) -> None:
    """Straight through Go: Neonize() returns whatsmeow's dial error, and connect() raises it."""
    driver = make_driver(neonize_preflight=False)
    drivers.append(driver)
    started = time.monotonic()
    with pytest.raises(ConnectError) as failure:
        await driver.connect("qr")
    assert time.monotonic() - started < 9
    assert str(failure.value).startswith("failed to dial whatsapp web websocket")
    assert "web.whatsapp.com" in str(failure.value)


async def test_offline_retries_do_not_leak_file_descriptors(
    make_driver: Callable[..., NeonizeDriver], drivers: list[NeonizeDriver]
) -> None:
    """goneonize leaks a sqlite handle per Neonize() call; offline retries never reach it."""
    driver = make_driver()
    drivers.append(driver)
    with pytest.raises(ConnectError):
        await driver.connect()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(ConnectError):
            await driver.connect()
    assert len(os.listdir("/proc/self/fd")) <= before + 2


async def test_failed_connect_and_close_leave_no_threads(
    make_driver: Callable[..., NeonizeDriver], drivers: list[NeonizeDriver]
) -> None:
    """After a failed dial the connection thread ends; close() stops the call pool too."""
    driver = make_driver("60123450001", neonize_preflight=False)
    drivers.append(driver)
    with pytest.raises(ConnectError):
        await driver.connect()
    await wait_until(lambda: not connection_threads("neonize-conn-60123450001"), 5, "connection thread ended")
    await driver.close()
    await wait_until(lambda: not connection_threads("neonize-call-60123450001"), 5, "call threads ended")
    with pytest.raises(ConnectError):
        await driver.connect()  # closed for good


async def test_connect_code_offline_fails_the_same_way(
    make_driver: Callable[..., NeonizeDriver], drivers: list[NeonizeDriver]
) -> None:
    """The pairing-code path needs a live socket first, so it fails with the dial error too."""
    driver = make_driver(neonize_preflight=False)
    drivers.append(driver)
    with pytest.raises(ConnectError, match="dial"):
        await driver.connect("code")


async def test_calls_without_a_connection_raise_not_connected_at_once(
    make_driver: Callable[..., NeonizeDriver], drivers: list[NeonizeDriver]
) -> None:
    """send / typing / check / groups need a connection and say so without touching Go."""
    driver = make_driver()
    drivers.append(driver)
    started = time.monotonic()
    with pytest.raises(NotConnectedError):
        await driver.send_text("60198765432@s.whatsapp.net", "hi")
    with pytest.raises(NotConnectedError):
        await driver.set_typing("60198765432@s.whatsapp.net", True)
    with pytest.raises(NotConnectedError):
        await driver.is_on_whatsapp(["60198765432"])
    with pytest.raises(NotConnectedError):
        await driver.joined_groups()
    with pytest.raises(ConnectError):
        await driver.connect()
    with pytest.raises(NotConnectedError):
        await driver.send_text("60198765432@s.whatsapp.net", "after a failed connect")
    assert time.monotonic() - started < 9


async def test_disconnect_and_logout_are_idempotent_and_logout_removes_the_session(
    make_driver: Callable[..., NeonizeDriver], drivers: list[NeonizeDriver]
) -> None:
    driver = make_driver(neonize_preflight=False)
    drivers.append(driver)
    await driver.disconnect()
    with pytest.raises(ConnectError):
        await driver.connect()
    assert driver.session_path.exists()  # whatsmeow created its store before dialing
    await driver.disconnect()
    await driver.disconnect()
    await driver.logout()
    assert not driver.session_path.exists()
    await driver.logout()


async def test_is_paired_reads_the_whatsmeow_device_table(
    make_driver: Callable[..., NeonizeDriver], drivers: list[NeonizeDriver]
) -> None:
    """No file, an unpaired store and a store holding a device are told apart."""
    driver = make_driver(neonize_preflight=False)
    drivers.append(driver)
    assert not driver.is_paired()
    with pytest.raises(ConnectError):
        await driver.connect()
    assert not driver.is_paired()  # whatsmeow's schema exists, but no device row
    db = sqlite3.connect(driver.session_path)
    try:
        columns = [(col[1], (col[2] or "").lower()) for col in db.execute("PRAGMA table_info(whatsmeow_device)")]
        assert columns, "neonize created the whatsmeow schema"
        row = {name: b"\x00" * 32 if kind == "bytea" else 1 for name, kind in columns}
        row.update(jid="60123456789:1@s.whatsapp.net", lid=None, facebook_uuid=None)
        db.execute("PRAGMA ignore_check_constraints = ON")  # a device row, not a working one
        db.execute(
            f"INSERT INTO whatsmeow_device ({','.join(row)}) VALUES ({','.join('?' * len(row))})",
            list(row.values()),
        )
        db.commit()
    finally:
        db.close()
    assert driver.is_paired()


async def test_connect_times_out_when_whatsmeow_never_answers(
    proxy: SilentProxy, make_driver: Callable[..., NeonizeDriver], drivers: list[NeonizeDriver]
) -> None:
    """A dial that hangs inside Go ends in ConnectError after the connect timeout."""
    driver = make_driver(neonize_proxy=proxy.url, neonize_connect_timeout_s=1)
    drivers.append(driver)
    started = time.monotonic()
    with pytest.raises(ConnectError, match="did not answer within 1 s"):
        await driver.connect()
    assert 0.9 < time.monotonic() - started < 5
    assert proxy.dials == 1  # the dial really reached the network


async def test_cancelled_connect_stops_its_attempt(
    proxy: SilentProxy, make_driver: Callable[..., NeonizeDriver], drivers: list[NeonizeDriver]
) -> None:
    """A caller's own timeout around connect() leaves no attempt running in Go."""
    driver = make_driver("60123450002", neonize_proxy=proxy.url, neonize_connect_timeout_s=60)
    drivers.append(driver)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(driver.connect(), 0.5)
    proxy.hang_up()
    # Bounded generously: on a loaded host the Go side may only now be dialing (what is tested is that it ends).
    await wait_until(lambda: not connection_threads("neonize-conn-60123450002"), 30, "attempt stopped")
    with pytest.raises(NotConnectedError):
        await driver.send_text("60198765432@s.whatsapp.net", "hi")


async def test_fifty_devices_dialing_do_not_starve_short_calls(
    proxy: SilentProxy, tmp_path: Path, drivers: list[NeonizeDriver]
) -> None:
    """50 connections blocked in Go hold 50 dedicated threads, not the loop's executor.

    While they hang: is_paired, a send failing with NotConnectedError, each
    device's call pool and even a 2-thread default executor all answer at once.
    """
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=2))
    options = DriverOptions(data_dir=tmp_path, extra={"neonize_proxy": proxy.url, "neonize_connect_timeout_s": 60})
    drivers.extend(NeonizeDriver(f"6019{n:07d}", options) for n in range(50))
    connects = [asyncio.create_task(d.connect()) for d in drivers]
    await wait_until(lambda: proxy.dials == 50, 30, "all 50 dials reached the network")
    assert len(connection_threads("neonize-conn-6019")) == 50

    started = time.monotonic()
    assert not any(d.is_paired() for d in drivers)
    for driver in drivers:
        with pytest.raises(NotConnectedError):
            await driver.send_text("60123456789@s.whatsapp.net", "hi")
    answers = await asyncio.wait_for(asyncio.gather(*(d._call(lambda: 42) for d in drivers)), 10)
    assert answers == [42] * 50
    assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 10) == "free"
    assert time.monotonic() - started < 10  # a starved call would wait out the 60 s dial
    assert not any(task.done() for task in connects)

    proxy.hang_up()  # the network "comes back" refusing: every dial fails now
    results = await asyncio.wait_for(asyncio.gather(*connects, return_exceptions=True), 20)
    assert all(isinstance(r, ConnectError) and "dial" in str(r) for r in results), results[:3]
    await asyncio.gather(*(d.close() for d in drivers))
    await wait_until(lambda: not connection_threads("neonize-conn-6019"), 10, "connection threads ended")


async def test_close_while_dialing_returns_promptly(
    proxy: SilentProxy, make_driver: Callable[..., NeonizeDriver]
) -> None:
    """close() does not wait for a hung dial longer than its bound; connect() is told."""
    driver = make_driver(neonize_proxy=proxy.url, neonize_connect_timeout_s=60)
    connecting = asyncio.create_task(driver.connect())
    await wait_until(lambda: proxy.dials == 1, 10, "dialing")
    started = time.monotonic()
    await driver.close()
    assert time.monotonic() - started < 5
    with pytest.raises(ConnectError, match="cancelled"):
        await connecting
    proxy.hang_up()
    await wait_until(lambda: not connection_threads("neonize-conn-60123456789"), 10, "thread ended after hang-up")


@pytest.mark.parametrize("close", [True, False], ids=["closed", "left-open"])
def test_process_exits_quickly_while_a_dial_hangs(tmp_path: Path, close: bool) -> None:
    """SIGTERM -> (close()) -> exit, with whatsmeow still inside a dial: under 10 s, exit code 0.

    Left open, the driver's at-exit hook stops its Go client (bounded) instead.
    """
    script = textwrap.dedent(
        f"""
        import asyncio, signal, socket, sys, threading
        from pathlib import Path
        from gateway.drivers.base import DriverOptions
        from gateway.drivers.neonize import NeonizeDriver
        from tests.support.poll import until

        async def main():
            silent = socket.socket()
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)  # never accepts: the kernel completes the handshake, nobody answers
            port = silent.getsockname()[1]
            options = DriverOptions(
                data_dir=Path({str(tmp_path)!r}),
                extra={{"neonize_proxy": f"http://127.0.0.1:{{port}}", "neonize_connect_timeout_s": 60}},
            )
            driver = NeonizeDriver("60123456789", options)
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            connecting = asyncio.create_task(driver.connect())
            # "dialing" once the connection thread is up (bounded wait, polled).
            await until(lambda: any(t.name.startswith("neonize-conn-") for t in threading.enumerate()), 10)
            print("dialing", flush=True)
            await stop.wait()
            if {close!r}:
                await driver.close()
            connecting.cancel()

        asyncio.run(main())
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "dialing"
        started = time.monotonic()
        proc.terminate()
        code = proc.wait(timeout=15)
        elapsed = time.monotonic() - started
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    assert code == 0, stderr
    assert elapsed < 10
    assert "Traceback" not in stderr

"""The real process: start-up, configuration errors, restart restore, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websockets

from tests.support.constants import API_KEY, OTHER, TOKEN
from tests.support.poll import until
from tests.support.proc import ServerProcess

pytestmark = pytest.mark.e2e


def launch(servers: list[ServerProcess], data_dir: Path, **env: str) -> ServerProcess:
    s = ServerProcess(data_dir, **env)
    servers.append(s)
    return s.start()


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PORT": "99999"}, "PORT"),
        ({"WA_DRIVER": "nope"}, "WA_DRIVER"),
        ({"PHONE_CACHE_TTL_S": "-5"}, "PHONE_CACHE_TTL_S"),
        # Cluster mode (CONTRACT §14) without a key shared by every node.
        ({"DATABASE_URL": "postgresql://127.0.0.1/none", "BUS_URL": "nats://127.0.0.1:1", "API_KEY": ""}, "API_KEY"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, env: dict[str, str], name: str) -> None:
    """A bad value stops start-up: exit code 2 and one line naming the variable."""
    proc = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env={**ServerProcess(tmp_path).env, **env},
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and name in lines[0]


def test_generated_key_is_saved_and_never_logged(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """Without API_KEY a key is generated into DATA_DIR/api_key (0600); the log names the file, not the key."""
    s = ServerProcess(tmp_path, API_KEY="")
    servers.append(s)
    s.start()
    key_file = tmp_path / "api_key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with s.client() as c:
        c.headers["X-API-Key"] = key
        assert c.get("/devices").status_code == 200
    s.signal()
    assert s.wait() == 0
    log = s.log()
    assert str(key_file) in log and key not in log


def test_sigterm_exits_0_quickly_with_devices_and_sockets_open(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """SIGTERM with connected devices and an open WebSocket: exit 0 well within 10 s."""
    s = launch(servers, tmp_path)
    with s.client() as c:
        c.post("/devices", json={"token": TOKEN})
        c.post(f"/sandbox/devices/{TOKEN}/scan")
        c.post("/devices", json={"token": OTHER})

    async def hold_socket_and_stop() -> float:
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/ws?apiKey={API_KEY}") as ws:
            await ws.recv()
            started = time.monotonic()
            s.signal(signal.SIGTERM)
            code = await asyncio.to_thread(s.wait, 12)
            assert code == 0
            return time.monotonic() - started

    elapsed = asyncio.run(hold_socket_and_stop())
    assert elapsed < 10


def test_restart_restores_paired_devices_without_a_scan(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """Pair, stop, start again: the device reconnects (device.connected again), pairing ones come back disconnected."""
    first = launch(servers, tmp_path)
    with first.client() as c:
        c.post("/devices", json={"token": TOKEN, "name": "Sales"})
        assert c.post(f"/sandbox/devices/{TOKEN}/scan").json()["data"]["status"] == "connected"
        c.post("/devices", json={"token": OTHER})  # left pairing
    first.signal()
    assert first.wait() == 0

    second = launch(servers, tmp_path)

    async def watch() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{second.port}/ws?apiKey={API_KEY}") as ws:
            with second.client() as c:

                def connected() -> object:
                    state = c.get(f"/devices/{TOKEN}").json()["data"]
                    return state if state["status"] == "connected" else None

                state = await until(connected, 10, f"{TOKEN} connected")
                assert state["status"] == "connected" and state["name"] == "Sales"
                other = c.get(f"/devices/{OTHER}").json()["data"]
                assert other["status"] == "disconnected" and other["reconnecting"] is False
            del ws

    asyncio.run(watch())


def test_user_disconnect_survives_restart(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """A device disconnected on request stays disconnected (reconnecting false) across a restart."""
    first = launch(servers, tmp_path)
    with first.client() as c:
        c.post("/devices", json={"token": TOKEN})
        c.post(f"/sandbox/devices/{TOKEN}/scan")
        c.post(f"/devices/{TOKEN}/disconnect")
    first.signal()
    assert first.wait() == 0
    second = launch(servers, tmp_path)
    with second.client() as c:
        state = c.get(f"/devices/{TOKEN}").json()["data"]
        assert state["status"] == "disconnected" and state["reconnecting"] is False
        assert c.post("/devices", json={"token": TOKEN}).json()["data"]["status"] == "connected"


def test_logs_are_json_lines_with_request_id(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """Off a TTY the log is JSON lines; a request's line carries its request id."""
    s = launch(servers, tmp_path)
    with s.client() as c:
        c.get("/devices", headers={"X-Request-ID": "trace-me-123"})
    s.signal()
    s.wait()
    lines = [json.loads(line) for line in s.log().splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == "trace-me-123" and line.get("route") == "/devices" for line in lines)


def test_websocket_frames_are_not_compressed(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """A client offering permessage-deflate gets plain frames: no zlib stream per listener."""
    s = launch(servers, tmp_path)

    async def negotiated() -> str | None:
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/ws?apiKey={API_KEY}", compression="deflate") as ws:
            await ws.recv()
            assert ws.request is not None and "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
            assert ws.response is not None
            return ws.response.headers.get("Sec-WebSocket-Extensions")

    assert asyncio.run(negotiated()) is None

"""The operator's side of the real process: --help, a port in use, the start-up line, a private data
directory, and a data directory that belongs to the other driver."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.constants import API_KEY, TOKEN
from tests.support.proc import ServerProcess

pytestmark = pytest.mark.e2e


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_prints_usage_and_every_variable_without_starting(tmp_path: Path) -> None:
    """`python -m gateway --help` documents the configuration and exits 0 without touching DATA_DIR."""
    data_dir = tmp_path / "never-created"
    done = run_cli("--help", env={"DATA_DIR": str(data_dir)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: wa-gateway")
    for name in ("HOST=", "PORT=", "API_KEY=", "DATA_DIR=", "WA_DRIVER=", "WEBHOOK_SECRET=", "--force"):
        assert name in done.stdout
    assert not data_dir.exists()


def test_port_in_use_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    """A taken port stops start-up with one line naming the port, exit 2 (not a traceback)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(env={"WA_DRIVER": "sandbox", "API_KEY": API_KEY, "DATA_DIR": str(tmp_path), "PORT": str(port)})
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"port {port}" in lines[0] and "already in use" in lines[0]


def test_started_line_says_where_to_go_after_the_port_is_bound(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """The start-up line names the console URL, driver, data directory, a redacted webhook target, whether it
    is signed and where the key is — and is written only once the port accepts connections."""
    s = ServerProcess(
        tmp_path / "data",
        WEBHOOK_URL="https://user:pass@crm.example.com/hook?token=secret",
        WEBHOOK_SECRET="whsec_ZGVtby1zZWNyZXQ=",
    )
    servers.append(s)
    s.start()
    lines = [json.loads(line) for line in s.log().splitlines() if line.startswith("{")]
    started = next(line for line in lines if line.get("event") == "gateway.started")
    assert started["console"] == f"http://127.0.0.1:{s.port}/"
    assert started["driver"] == "sandbox"
    assert started["data_dir"] == str((tmp_path / "data").resolve())
    assert started["webhook_url"] == "https://crm.example.com/hook"
    assert started["webhook_signed"] is True
    assert started["api_key"] == "API_KEY from the environment"
    assert "secret" not in s.log().replace("webhook_signed", "")


def test_data_dir_is_private_and_session_files_0600(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """DATA_DIR is 0700 and every file in it 0600: gateway.db (with -wal/-shm), the generated key, the driver
    record and each device's session file."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    s = ServerProcess(data_dir, API_KEY="")
    servers.append(s)
    s.start()
    s.env["API_KEY"] = (data_dir / "api_key").read_text().strip()
    with s.client() as c:
        assert c.post("/devices", json={"token": TOKEN}).status_code == 200
        assert c.post(f"/sandbox/devices/{TOKEN}/scan").status_code == 200
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    entries = [p for p in data_dir.rglob("*") if not p.name.startswith("server-")]
    files = {str(p.relative_to(data_dir)): stat.S_IMODE(p.stat().st_mode) for p in entries if p.is_file()}
    dirs = {str(p.relative_to(data_dir)): stat.S_IMODE(p.stat().st_mode) for p in entries if p.is_dir()}
    assert {"gateway.db", "api_key", "driver", f"{TOKEN}.db", "media_url_secret"} <= set(files)
    assert all(mode == 0o600 for mode in files.values()), files
    assert all(mode == 0o700 for mode in dirs.values()), dirs  # media/ and media/tmp/


def test_other_driver_on_a_data_dir_is_refused_unless_forced(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """A DATA_DIR recorded for neonize refuses the sandbox with one clear line (exit 2); --force adopts it."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "driver").write_text("neonize\n")
    env = {"WA_DRIVER": "sandbox", "API_KEY": API_KEY, "DATA_DIR": str(data_dir), "PORT": "1"}
    done = run_cli(env=env)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "neonize driver" in lines[0] and "--force" in lines[0], done.stderr
    assert (data_dir / "driver").read_text() == "neonize\n"
    s = ServerProcess(data_dir)
    servers.append(s)
    s.proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--force"], env=s.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    s.wait_healthy()
    assert (data_dir / "driver").read_text() == "sandbox\n"

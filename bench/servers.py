"""The servers a benchmark measures, each in its own process on 127.0.0.1 and a free port, so the
load generator never shares an interpreter with it. The process itself is ``tests.support.proc``'s
``ChildServer`` (the end-to-end tests start theirs with it too)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.support.net import HOST, free_port
from tests.support.proc import ChildServer as Server
from tests.support.proc import cpu_seconds, gateway_argv, gateway_env, raise_nofile, rss_mb

__all__ = [
    "API_KEY",
    "HOST",
    "ROOT",
    "Server",
    "bare_app",
    "cpu_seconds",
    "free_port",
    "gateway",
    "raise_nofile",
    "rss_mb",
    "running",
    "workdir",
]

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-admin-key"


def gateway(data_dir: Path, port: int | None = None, **env: str) -> Server:
    """The gateway (``python -m gateway``) in sandbox mode, rate limit off, on ``data_dir``."""
    port = port or free_port()
    full = gateway_env(port, data_dir, API_KEY, **{"TYPING_DELAY_MS": "0", "LOG_LEVEL": "warning", **env})
    # The gateway reads ./.env: run it from a directory that has none.
    cwd = data_dir.parent
    return Server(gateway_argv(), full, port, cwd / f"gateway-{port}.log", cwd=cwd, nofile=True)


def bare_app(workdir: Path, port: int | None = None) -> Server:
    """The baseline: a bare Starlette JSON endpoint on the same uvicorn settings."""
    port = port or free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "bench.bare_app", "--port", str(port)]
    return Server(argv, env, port, workdir / f"bare-{port}.log", cwd=workdir, nofile=True)


@contextlib.contextmanager
def workdir(prefix: str) -> Any:
    """A temporary directory removed afterwards (kept when BENCH_KEEP=1)."""
    path = Path(tempfile.mkdtemp(prefix=f"wag-bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running(server: Server, ready_timeout: float = 30.0) -> Any:
    server.start()
    try:
        server.wait_ready(timeout=ready_timeout)
        yield server
    finally:
        server.stop()

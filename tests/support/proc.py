"""A server in a child process on 127.0.0.1, shared by the end-to-end tests and ``python -m bench``.

Nothing here imports the gateway: the benchmarks start servers that are not the gateway
(a bare Starlette app), and a test that runs ``python -m gateway`` must not need its code
loaded in the test process. Every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.support.constants import API_KEY
from tests.support.net import HOST, free_port
from tests.support.poll import until_sync


def raise_nofile(limit: int = 65536) -> int:
    """Raise this process's open-file soft limit (up to the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(limit, hard) if hard != resource.RLIM_INFINITY else limit
    if want > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB, from /proc/<pid>/status (0 when gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (from /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class NotReady(AssertionError):
    """The server exited or did not answer in time; the message carries the end of its log."""


class ChildServer:
    """``argv`` run with ``env`` in ``cwd``, serving ``http://127.0.0.1:<port>``; stdout and stderr
    go to ``log_path``. ``nofile`` raises the child's open-file limit (the load benchmarks need it)."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        port: int,
        log_path: Path,
        cwd: Path | None = None,
        nofile: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.env = env
        self.port = port
        self.log_path = log_path
        self.cwd = cwd
        self.nofile = nofile
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> ChildServer:
        if self.cwd is not None:
            self.cwd.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it for its life
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile if self.nofile else None,
        )
        log.close()
        return self

    def wait_ready(self, path: str = "/health", timeout: float = 30.0) -> float:
        """Poll ``path`` until it answers 200; return seconds since start. ``NotReady`` if it
        exits first or stays silent for ``timeout`` seconds."""
        with httpx.Client(base_url=self.base, timeout=2.0) as client:

            def ready() -> bool:
                if self.proc is not None and self.proc.poll() is not None:
                    raise NotReady(f"server exited with {self.proc.returncode}; log:\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    return client.get(path).status_code == 200
                return False

            try:
                until_sync(ready, timeout, f"{self.base}{path}")
            except AssertionError:
                raise NotReady(f"{self.base}{path} not ready after {timeout}s; log:\n{self.tail()}") from None
        return time.perf_counter() - self.started_at

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        """The exit code (``subprocess.TimeoutExpired`` after ``timeout`` seconds)."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 15.0) -> tuple[int | None, float]:
        """SIGTERM, wait (bounded); return (exit code, seconds to exit). SIGKILL if it hangs (code None)."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None, 0.0)
        began = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return (None, time.perf_counter() - began)
        return (code, time.perf_counter() - began)

    def kill(self) -> None:
        """SIGKILL if still running (a test's teardown: nothing to wait for)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def gateway_argv() -> list[str]:
    return [sys.executable, "-m", "gateway"]


def gateway_env(port: int, data_dir: Path, api_key: str, **env: str) -> dict[str, str]:
    """``python -m gateway``'s environment: sandbox driver, no rate limit, JSON logs; ``env`` wins."""
    return {
        **os.environ,
        "HOST": HOST,
        "PORT": str(port),
        "DATA_DIR": str(data_dir),
        "WA_DRIVER": "sandbox",
        "API_KEY": api_key,
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOG_FORMAT": "json",
        **env,
    }


class ServerProcess(ChildServer):
    """The real gateway process (``python -m gateway``) for end-to-end tests, on ``data_dir``
    with the tests' admin key; ``env`` overrides any variable (``PORT`` too)."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        port = int(env.pop("PORT", free_port()))
        log_path = data_dir / f"server-{port}-{time.monotonic_ns()}.log"
        super().__init__(gateway_argv(), gateway_env(port, data_dir, API_KEY, **env), port, log_path)

    def start(self, wait: bool = True) -> ServerProcess:
        super().start()
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 20) -> None:
        self.wait_ready("/health", timeout)

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"X-API-Key": self.env["API_KEY"]}, timeout=10, **kw)

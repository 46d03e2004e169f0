"""Shared benchmark plumbing: servers as subprocesses, RSS, percentiles, results.

Every server under test runs in its own process on 127.0.0.1 and a free port,
so the load generator never shares an interpreter with it. Every loop here is
bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
API_KEY = "bench-admin-key"
HOST = "127.0.0.1"


# --- processes -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


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


@dataclass
class Server:
    """A server process under test, reachable at ``http://127.0.0.1:<port>``."""

    argv: list[str]
    env: dict[str, str]
    port: int
    cwd: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Server:
        self.cwd.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its life
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile
        )
        log.close()
        return self

    def wait_ready(self, path: str = "/health", timeout: float = 30.0) -> float:
        """Poll ``path`` until it answers 200; return seconds since start."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}; log: {self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(path).status_code == 200:
                        return time.perf_counter() - self.started_at
                time.sleep(0.05)
        raise TimeoutError(f"{self.base}{path} not ready after {timeout}s; log: {self.tail()}")

    def stop(self, timeout: float = 15.0) -> tuple[int | None, float]:
        """SIGTERM, wait (bounded); return (exit code, seconds to exit). SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None, 0.0)
        began = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5)
            return (None, time.perf_counter() - began)
        return (code, time.perf_counter() - began)

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def gateway(data_dir: Path, port: int | None = None, **env: str) -> Server:
    """The gateway (``python -m gateway``) in sandbox mode, rate limit off, on ``data_dir``."""
    port = port or free_port()
    full = {
        **os.environ,
        "HOST": HOST,
        "PORT": str(port),
        "API_KEY": API_KEY,
        "DATA_DIR": str(data_dir),
        "WA_DRIVER": "sandbox",
        "RATE_LIMIT_PER_MINUTE": "0",
        "TYPING_DELAY_MS": "0",
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
        **env,
    }
    # The gateway reads ./.env: run it from a directory that has none.
    cwd = data_dir.parent
    return Server([sys.executable, "-m", "gateway"], full, port, cwd, cwd / f"gateway-{port}.log")


def bare_app(workdir: Path, port: int | None = None) -> Server:
    """The baseline: a bare Starlette JSON endpoint on the same uvicorn settings."""
    port = port or free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "bench.bare_app", "--port", str(port)]
    return Server(argv, env, port, workdir, workdir / f"bare-{port}.log")


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


# --- numbers -------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summarize_ms(seconds: Iterable[float]) -> dict[str, float]:
    """count, mean, p50, p90, p99, p99.9, max of durations given in seconds, in ms."""
    values = sorted(s * 1000 for s in seconds)
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), 3),
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "p999": round(percentile(values, 99.9), 3),
        "max": round(values[-1], 3),
    }


def slope_per_minute(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    sxx = sum((t - mx) ** 2 for t, _ in samples)
    if sxx == 0:
        return 0.0
    sxy = sum((t - mx) * (v - my) for t, v in samples)
    return sxy / sxx * 60


# --- results -------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other work on the machine skews every figure: recorded with each result.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with when and where it ran) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"benchmark": name, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(), **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    return path


def verdict(value: float, target: float, higher_is_better: bool = False) -> str:
    ok = value >= target if higher_is_better else value < target
    return "PASS" if ok else "MISS"


# --- tools ---------------------------------------------------------------------


def ensure_wrk() -> str | None:
    """Path of Debian's ``wrk``, installing it with apt-get when missing (root only)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
        subprocess.run(install, env=env, capture_output=True, timeout=300)
    return shutil.which("wrk")


# --- the gateway's API -----------------------------------------------------------


def valid_tokens(n: int, start: int = 60_120_000_001) -> list[str]:
    """``n`` distinct phone numbers that ``phonenumbers`` accepts (Malaysian mobiles)."""
    from gateway.phones import InvalidPhone, normalize

    out: list[str] = []
    candidate = start
    limit = start + n * 10 + 1000
    while len(out) < n and candidate < limit:
        with contextlib.suppress(InvalidPhone):
            out.append(normalize(str(candidate)))
        candidate += 1
    if len(out) < n:
        raise RuntimeError(f"only {len(out)} valid numbers from {start}")
    return out


def api_client(server: Server, connections: int = 64, timeout: float = 30.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base,
        headers={"X-API-Key": API_KEY},
        timeout=timeout,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def pair_devices(
    client: httpx.AsyncClient, tokens: Sequence[str], concurrency: int = 32, deadline_s: float = 300.0
) -> dict[str, Any]:
    """Create and pair every token (``POST /devices`` + sandbox scan), ``concurrency`` at a time."""
    sem = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def one(token: str) -> None:
        async with sem:
            r = await client.post("/devices", json={"token": token})
            if r.status_code != 200:
                failures.append(f"{token}: create {r.status_code} {r.text[:120]}")
                return
            r = await client.post(f"/sandbox/devices/{token}/scan")
            if r.status_code != 200 or r.json()["data"]["status"] != "connected":
                failures.append(f"{token}: scan {r.status_code} {r.text[:120]}")

    began = time.perf_counter()
    async with asyncio.timeout(deadline_s):
        await asyncio.gather(*(one(t) for t in tokens))
    return {
        "devices": len(tokens),
        "seconds": round(time.perf_counter() - began, 3),
        "failures": failures[:10],
        "failed": len(failures),
    }


async def count_connected(client: httpx.AsyncClient) -> tuple[int, int]:
    """(connected, total) from ``GET /devices``."""
    r = await client.get("/devices")
    r.raise_for_status()
    devices = r.json()["data"]["devices"]
    return sum(1 for d in devices if d["status"] == "connected"), len(devices)


async def wait_connected(
    client: httpx.AsyncClient, want: int, timeout: float, interval: float = 0.1
) -> tuple[float | None, int]:
    """Poll ``GET /devices`` until ``want`` devices are connected: (seconds or None, last count)."""
    began = time.perf_counter()
    connected = 0
    while time.perf_counter() - began < timeout:
        with contextlib.suppress(httpx.HTTPError):
            connected, _ = await count_connected(client)
            if connected >= want:
                return time.perf_counter() - began, connected
        await asyncio.sleep(interval)
    return None, connected


# --- an open-loop, constant-rate HTTP/1.1 driver -----------------------------------


class _Conn:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def roundtrip(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def http_request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class RateRun:
    """What a constant-rate run saw: latencies from the intended send time."""

    rate: float
    seconds: float
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # intended send → response, seconds
    service: list[float] = field(default_factory=list)  # actual send → response, seconds
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    elapsed: float = 0.0
    late_starts: int = 0  # requests that waited for a free connection

    def report(self) -> dict[str, Any]:
        ok = sum(n for s, n in self.statuses.items() if 200 <= s < 300)
        return {
            "target_rate": self.rate,
            "achieved_rate": round(len(self.latencies) / self.elapsed, 1) if self.elapsed else 0,
            "sent": self.sent,
            "completed": len(self.latencies),
            "ok": ok,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "waited_for_connection": self.late_starts,
            "latency_ms": summarize_ms(self.latencies),
            "service_ms": summarize_ms(self.service),
        }


async def constant_rate(
    port: int,
    make_request: Callable[[int], bytes],
    rate: float,
    seconds: float,
    connections: int = 32,
    on_response: Callable[[int, int, bytes], None] | None = None,
) -> RateRun:
    """Send ``rate`` requests/s for ``seconds`` over up to ``connections`` keep-alive
    connections, on a fixed schedule whatever the responses do (open loop, so a
    stall shows as latency instead of as fewer requests). ``make_request(i)`` is
    called right before request ``i`` is written."""
    run = RateRun(rate, seconds)
    total = max(1, int(rate * seconds))
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    conns = [await _Conn.open(port) for _ in range(connections)]
    for c in conns:
        pool.put_nowait(c)
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, intended: float) -> None:
        if pool.empty():
            run.late_starts += 1
        conn = await pool.get()
        sent = time.perf_counter()
        try:
            status, body = await asyncio.wait_for(conn.roundtrip(make_request(i)), 30)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            run.errors += 1
            conn.close()
            with contextlib.suppress(OSError):
                fresh = await _Conn.open(port)
                conns.append(fresh)
                pool.put_nowait(fresh)
            return
        done = time.perf_counter()
        pool.put_nowait(conn)
        run.latencies.append(done - intended)
        run.service.append(done - sent)
        run.statuses[status] = run.statuses.get(status, 0) + 1
        if on_response is not None:
            on_response(i, status, body)

    t0 = time.perf_counter()
    i = 0
    while i < total:
        now = time.perf_counter()
        while i < total and t0 + i / rate <= now:
            task = asyncio.create_task(one(i, t0 + i / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            run.sent += 1
        if i < total:
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
    if tasks:
        await asyncio.wait(set(tasks), timeout=30)
    run.elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return run


def use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

"""CSV export at scale: 1,000,000 contacts of one device streamed in bounded memory.

Loads ``--rows`` contacts for one token straight into ``gateway.db`` through the
store (``executemany`` in chunks), starts the gateway (``python -m gateway``,
sandbox) as a subprocess, and streams ``GET /contacts/{token}?format=csv&limit=all``
to the end over HTTP on 127.0.0.1 while a thread samples the server's RSS
(``VmRSS`` in /proc/<pid>/status) every 20 ms. Reports rows/s, MB/s and the
RSS growth over the pre-export baseline (target < 50 MB).

    python -m bench.csv_export [--rows 1000000]
    python bench/csv_export.py
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: bench/ first on sys.path would shadow the stdlib `http`
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _here]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import threading
import time
from typing import Any

import httpx

from bench import report, servers
from gateway.store import ContactRow, Store

TOKEN = "60123456789"
CHUNK = 50_000
NAMES = ("Ali", "Siti Aminah", "Tan, Ah Kow", 'Raj "Boss" Kumar', "=SUM(A1)", "Ng 🙂", "")


def _rows(start: int, count: int) -> list[ContactRow]:
    """Contacts with distinct phones, a name mix that needs quoting and neutralising, ordered first_seen."""
    out = []
    for i in range(start, start + count):
        seen = f"2026-01-01T{i // 3_600_000 % 24:02d}:{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z"
        out.append(ContactRow(f"6011{i:08d}", NAMES[i % len(NAMES)] or None, "history", seen, seen))
    return out


async def load(data_dir: Path, rows: int) -> float:
    """Insert ``rows`` contacts for TOKEN; return seconds."""
    began = time.perf_counter()
    store = await Store.open(data_dir)
    try:
        for start in range(0, rows, CHUNK):
            await store.insert_contacts_bulk(TOKEN, None, _rows(start, min(CHUNK, rows - start)))
        assert await store.count_contacts(TOKEN) == rows
    finally:
        await store.close()
    return time.perf_counter() - began


class RssSampler(threading.Thread):
    """Samples one process's RSS until stopped; keeps the peak and every sample."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        began = time.perf_counter()
        while not self.halt.is_set():
            self.samples.append((round(time.perf_counter() - began, 3), servers.rss_mb(self.pid)))
            self.halt.wait(self.every)

    @property
    def peak(self) -> float:
        return max((mb for _, mb in self.samples), default=0.0)


def stream(server: servers.Server, timeout: float) -> dict[str, Any]:
    """Download the whole export; count bytes and lines (bench names have no newlines)."""
    headers = {"X-API-Key": servers.API_KEY}
    url = f"{server.base}/contacts/{TOKEN}?format=csv&limit=all"
    nbytes = lines = 0
    first = b""
    began = time.perf_counter()
    first_byte_s = None
    with httpx.Client(timeout=timeout) as client, client.stream("GET", url, headers=headers) as r:
        status, ctype = r.status_code, r.headers.get("content-type")
        for chunk in r.iter_raw(1 << 16):
            if first_byte_s is None:
                first_byte_s = time.perf_counter() - began
            if len(first) < 200:
                first += chunk[:200]
            nbytes += len(chunk)
            lines += chunk.count(b"\n")
            if time.perf_counter() - began > timeout:
                raise TimeoutError(f"export not finished after {timeout} s")
    return {
        "status": status,
        "content_type": ctype,
        "seconds": time.perf_counter() - began,
        "first_byte_s": first_byte_s,
        "bytes": nbytes,
        "rows": lines - 1,
        "header": first.split(b"\r\n", 1)[0].decode(),
    }


def run(rows: int = 1_000_000, timeout: float = 300.0) -> dict[str, Any]:
    with servers.workdir("csv") as wd:
        data = wd / "data"
        load_s = asyncio.run(load(data, rows))
        print(f"  loaded {rows:,} contacts in {load_s:.1f} s", flush=True)
        with servers.running(servers.gateway(data)) as gw:
            # Warm the route up (imports, first query plan) so the baseline is the idle server.
            httpx.get(f"{gw.base}/contacts/{TOKEN}?format=csv&limit=10", headers={"X-API-Key": servers.API_KEY})
            time.sleep(0.5)
            baseline = gw.rss_mb()
            sampler = RssSampler(gw.pid)
            sampler.start()
            try:
                got = stream(gw, timeout)
            finally:
                sampler.halt.set()
                sampler.join()
            after = gw.rss_mb()
    growth = sampler.peak - baseline
    rows_per_s = got["rows"] / got["seconds"] if got["seconds"] else 0.0
    complete = got["status"] == 200 and got["rows"] == rows
    print(
        f"  streamed {got['rows']:,} rows / {got['bytes'] / 1e6:.1f} MB in {got['seconds']:.1f} s "
        f"({rows_per_s:,.0f} rows/s, {got['bytes'] / 1e6 / got['seconds']:.1f} MB/s); "
        f"RSS {baseline:.1f} → peak {sampler.peak:.1f} MiB (+{growth:.1f})",
        flush=True,
    )
    step = max(1, len(sampler.samples) // 200)
    return {
        "method": "contacts inserted via Store.insert_contacts_bulk (executemany, 50k chunks); gateway as "
        "`python -m gateway` (sandbox); one httpx stream of GET /contacts/{token}?format=csv&limit=all on "
        "127.0.0.1; server RSS from /proc/<pid>/status VmRSS every 20 ms; growth = peak - idle baseline "
        "after a warm-up request",
        "rows": rows,
        "load_seconds": round(load_s, 2),
        "export": {
            **{k: got[k] for k in ("status", "content_type", "rows", "bytes", "header")},
            "seconds": round(got["seconds"], 2),
            "first_byte_ms": round((got["first_byte_s"] or 0) * 1000, 1),
            "rows_per_s": round(rows_per_s),
            "mb_per_s": round(got["bytes"] / 1e6 / got["seconds"], 1) if got["seconds"] else None,
            "complete": complete,
        },
        "rss_mb": {
            "baseline": round(baseline, 1),
            "peak": round(sampler.peak, 1),
            "after": round(after, 1),
            "growth": round(growth, 1),
            "samples": [(t, round(mb, 1)) for t, mb in sampler.samples[::step]],
        },
        "targets": {
            "csv_rss_growth_mb": {
                "value": round(growth, 1),
                "target": "< 50",
                "verdict": report.verdict(growth, 50) if complete else "MISS",
            },
            "csv_rows_per_s": {"value": round(rows_per_s), "target": "report", "verdict": "INFO"},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=300.0, help="upper bound for the export, seconds")
    args = parser.parse_args()
    result = run(args.rows, args.timeout)
    for name, t in result["targets"].items():
        print(f"  {name}: {t['value']} (target {t['target']}) {t['verdict']}")
    print(f"wrote {report.write_result('csv_export', result)}")


if __name__ == "__main__":
    main()

"""HTTP throughput and latency, side by side with a bare Starlette endpoint.

Throughput: Debian's ``wrk`` (C, one thread, keep-alive connections) against
``GET /health`` and ``POST /messages`` of the gateway and against the bare
Starlette app (``bench/bare_app.py``) on the same uvicorn settings, in the same
run. Latency at a fixed rate: ``wrk2`` is not packaged by Debian, so an
open-loop constant-rate driver (``common.constant_rate``: raw asyncio sockets,
uvloop, latency measured from each request's *scheduled* send time, so a stall
shows up as latency) sends 1,000 requests/s.

    python -m bench.http [--seconds 10] [--connections 50] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common

TOKEN = "60123456789"
TO = "60198765432"
MESSAGE = {"token": TOKEN, "to": TO, "text": "hello from the benchmark"}

_LUA = """
wrk.method = "%(method)s"
wrk.body = [[%(body)s]]
%(headers)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":{"mean":%%.1f,"p50":%%d,"p90":%%d,"p99":%%d,"p999":%%d,"max":%%d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


def wrk_script(method: str, body: bytes, headers: dict[str, str]) -> str:
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    return _LUA % {"method": method, "body": body.decode(), "headers": "\n".join(lines)}


def run_wrk(
    wrk: str, url: str, seconds: float, connections: int, method: str = "GET", body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One ``wrk`` run (one thread); requests/s, latency percentiles, errors."""
    hdrs = dict(headers or {})
    if body:
        hdrs["Content-Type"] = "application/json"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(wrk_script(method, body, hdrs))
        script = fh.name
    try:
        argv = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s", script, url]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    finally:
        Path(script).unlink(missing_ok=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary: {out.stdout[-500:]} {out.stderr[-500:]}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    secs = raw["duration_us"] / 1e6
    lat = {k: round(v / 1000, 3) for k, v in raw["latency_us"].items()}
    errors = sum(raw["errors"].values())
    return {
        "requests": raw["requests"],
        "seconds": round(secs, 2),
        "rps": round(raw["requests"] / secs, 1) if secs else 0,
        "latency_ms": lat,
        "errors": raw["errors"],
        "error_total": errors,
    }


async def _setup_gateway(gw: common.Server) -> bool:
    """Pair the sandbox device; True when ``POST /messages`` exists and sends."""
    async with common.api_client(gw) as client:
        report = await common.pair_devices(client, [TOKEN], concurrency=1)
        if report["failed"]:
            raise RuntimeError(f"pairing failed: {report['failures']}")
        r = await client.post("/messages", json=MESSAGE)
        return r.status_code == 200


def _latency_run(server: common.Server, request: bytes, rate: float, seconds: float) -> dict[str, Any]:
    async def go() -> common.RateRun:
        return await common.constant_rate(server.port, lambda _i: request, rate, seconds, connections=32)

    cpu0, t0 = server.cpu_seconds(), time.perf_counter()
    out = asyncio.run(go()).report()
    out["server_cpu_pct"] = round(100 * (server.cpu_seconds() - cpu0) / (time.perf_counter() - t0), 1)
    return out


def run(seconds: float = 10, connections: int = 50, rate: float = 1000, latency_seconds: float = 10,
        warmup: float = 2) -> dict[str, Any]:
    common.use_uvloop()
    wrk = common.ensure_wrk()
    if wrk is None:
        raise RuntimeError("wrk is not installed and could not be installed (apt-get install wrk)")
    auth = {"X-API-Key": common.API_KEY}
    body = json.dumps(MESSAGE).encode()
    throughput: dict[str, Any] = {}
    latency: dict[str, Any] = {}
    with common.workdir("http") as wd:
        bare = common.bare_app(wd)
        gw = common.gateway(wd / "data")
        with common.running(bare), common.running(gw):
            have_messages = asyncio.run(_setup_gateway(gw))
            cases: list[tuple[str, common.Server, str, str, bytes, dict[str, str]]] = [
                ("bare GET /health", bare, "GET", "/health", b"", {}),
                ("gateway GET /health", gw, "GET", "/health", b"", {}),
                ("gateway GET /devices/{token}", gw, "GET", f"/devices/{TOKEN}", b"", auth),
                ("bare POST /echo", bare, "POST", "/echo", body, {}),
            ]
            if have_messages:
                cases.append(("gateway POST /messages", gw, "POST", "/messages", body, auth))
            for name, server, method, path, payload, headers in cases:
                url = server.base + path
                if warmup:
                    run_wrk(wrk, url, warmup, connections, method, payload, headers)
                cpu0, t0 = server.cpu_seconds(), time.perf_counter()
                result = run_wrk(wrk, url, seconds, connections, method, payload, headers)
                result["server_cpu_pct"] = round(100 * (server.cpu_seconds() - cpu0) / (time.perf_counter() - t0), 1)
                result["server_rss_mb"] = round(server.rss_mb(), 1)
                throughput[name] = result
                print(f"  wrk {name:32} {result['rps']:>9.0f} req/s  p99 {result['latency_ms']['p99']:.2f} ms"
                      f"  errors {result['error_total']}", flush=True)
            headers_raw = {"X-API-Key": common.API_KEY}
            lat_cases = [("bare GET /health", bare, common.http_request("GET", "/health"))]
            if have_messages:
                lat_cases.append(
                    ("gateway POST /messages", gw, common.http_request("POST", "/messages", body, headers_raw))
                )
            lat_cases.append(("gateway GET /health", gw, common.http_request("GET", "/health")))
            lat_cases.append(
                ("gateway GET /devices/{token}", gw, common.http_request("GET", f"/devices/{TOKEN}", b"", headers_raw))
            )
            for name, server, request in lat_cases:
                result = _latency_run(server, request, rate, latency_seconds)
                latency[name] = result
                print(f"  {rate:.0f}/s {name:32} p50 {result['latency_ms'].get('p50', 0):.2f} ms"
                      f"  p99 {result['latency_ms'].get('p99', 0):.2f} ms  ok {result['ok']}/{result['sent']}",
                      flush=True)
            rss = gw.rss_mb()
    return _judge(throughput, latency, have_messages, rss, seconds, connections, rate, latency_seconds)


def _judge(throughput: dict[str, Any], latency: dict[str, Any], have_messages: bool, rss: float,
           seconds: float, connections: int, rate: float, latency_seconds: float) -> dict[str, Any]:
    bare_post = throughput["bare POST /echo"]["rps"]
    bare_get = throughput["bare GET /health"]["rps"]
    post_name = "gateway POST /messages" if have_messages else "gateway GET /devices/{token}"
    post_rps = throughput[post_name]["rps"]
    ratio = post_rps / (bare_post if have_messages else bare_get) if bare_post else 0.0
    p99 = latency[post_name]["latency_ms"].get("p99", 0.0)
    targets = {
        "messages_vs_bare_ratio": {"value": round(ratio, 3), "target": ">= 0.5",
                                   "verdict": common.verdict(ratio, 0.5, higher_is_better=True),
                                   "measured_on": post_name},
        "messages_p99_ms_at_1000rps": {"value": p99, "target": "< 20", "verdict": common.verdict(p99, 20),
                                       "measured_on": post_name, "rate": rate},
        "health_vs_bare_ratio": {"value": round(throughput["gateway GET /health"]["rps"] / bare_get, 3)
                                 if bare_get else 0, "target": "(reported)", "verdict": "INFO"},
    }
    return {
        "method": {
            "throughput": f"wrk -t1 -c{connections} -d{seconds}s, keep-alive, after a warm-up run",
            "latency": f"open-loop constant-rate driver (raw asyncio sockets, 32 keep-alive connections), "
                       f"{rate:.0f} req/s for {latency_seconds}s, latency from the scheduled send time; "
                       "wrk2 is not packaged by Debian",
            "servers": "python -m gateway (WA_DRIVER=sandbox, RATE_LIMIT_PER_MINUTE=0, TYPING_DELAY_MS=0, "
                       "LOG_LEVEL=warning) and bench/bare_app.py: uvloop, httptools, 1 worker, no access log",
        },
        "post_messages_available": have_messages,
        "throughput": throughput,
        "latency_at_rate": latency,
        "gateway_rss_mb_after": round(rss, 1),
        "targets": targets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--latency-seconds", type=float, default=10)
    args = parser.parse_args()
    result = run(args.seconds, args.connections, args.rate, args.latency_seconds)
    path = common.write_result("http", result)
    for name, t in result["targets"].items():
        print(f"  {name}: {t['value']} (target {t['target']}) {t['verdict']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

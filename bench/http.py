"""HTTP throughput and latency, side by side with a bare Starlette endpoint.

Throughput: Debian's ``wrk`` (C, one thread, keep-alive connections) against
``GET /health`` and ``POST /messages`` of the gateway and against the bare
Starlette app (``bench/bare_app.py``) on the same uvicorn settings, in the same
run. Latency at a fixed rate: ``wrk2`` is not packaged by Debian, so an
open-loop constant-rate driver (``loadgen.constant_rate``: raw asyncio sockets,
uvloop, latency measured from each request's *scheduled* send time, so a stall
shows up as latency) sends 1,000 requests/s.

Throughput runs in rounds (each round: every case once, back to back) and
reports medians, because this shared host's speed drifts by up to 2× over
minutes; a ratio is the median of its per-round ratios.

    python -m bench.http [--seconds 5] [--rounds 3] [--connections 50] [--rate 1000]
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

from bench import gateway_api, loadgen, report, servers
from bench.wrk import ensure_wrk

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
    wrk: str,
    url: str,
    seconds: float,
    connections: int,
    method: str = "GET",
    body: bytes = b"",
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


async def _setup_gateway(gw: servers.Server) -> bool:
    """Pair the sandbox device; True when ``POST /messages`` exists and sends."""
    async with gateway_api.api_client(gw) as client:
        report = await gateway_api.pair_devices(client, [TOKEN], concurrency=1)
        if report["failed"]:
            raise RuntimeError(f"pairing failed: {report['failures']}")
        r = await client.post("/messages", json=MESSAGE)
        return r.status_code == 200


def _latency_run(server: servers.Server, request: bytes, rate: float, seconds: float) -> dict[str, Any]:
    async def go() -> loadgen.RateRun:
        return await loadgen.constant_rate(server.port, lambda _i: request, rate, seconds, connections=32)

    cpu0, t0 = server.cpu_seconds(), time.perf_counter()
    out = asyncio.run(go()).report()
    out["server_cpu_pct"] = round(100 * (server.cpu_seconds() - cpu0) / (time.perf_counter() - t0), 1)
    return out


Case = tuple[str, servers.Server, str, str, bytes, dict[str, str]]


def _interleaved(
    wrk: str, cases: list[Case], rounds: int, seconds: float, connections: int, warmup: float
) -> dict[str, list[dict[str, Any]]]:
    """Every case once per round, rounds back to back: a baseline and the gateway are measured
    seconds apart, so a slow spell of a shared host hits both sides of a ratio alike."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in cases}
    for rnd in range(rounds):
        for name, server, method, path, payload, headers in cases:
            url = server.base + path
            if warmup and rnd == 0:
                run_wrk(wrk, url, warmup, connections, method, payload, headers)
            cpu0, t0 = server.cpu_seconds(), time.perf_counter()
            result = run_wrk(wrk, url, seconds, connections, method, payload, headers)
            result["server_cpu_pct"] = round(100 * (server.cpu_seconds() - cpu0) / (time.perf_counter() - t0), 1)
            result["server_cpu_us_per_request"] = (
                round(result["server_cpu_pct"] * 1e4 / result["rps"], 1) if result["rps"] else None
            )
            result["server_rss_mb"] = round(server.rss_mb(), 1)
            out[name].append(result)
            print(
                f"  round {rnd + 1}/{rounds} wrk {name:32} {result['rps']:>9.0f} req/s"
                f"  p99 {result['latency_ms']['p99']:.2f} ms  errors {result['error_total']}",
                flush=True,
            )
    return out


def _median_round(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median requests/s, with every round's figure alongside."""
    ordered = sorted(results, key=lambda r: r["rps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["rps_rounds"] = [r["rps"] for r in results]
    return chosen


def run(
    seconds: float = 5,
    connections: int = 50,
    rate: float = 1000,
    latency_seconds: float = 10,
    warmup: float = 2,
    rounds: int = 3,
) -> dict[str, Any]:
    loadgen.use_uvloop()
    wrk = ensure_wrk()
    if wrk is None:
        raise RuntimeError("wrk is not installed and could not be installed (apt-get install wrk)")
    auth = {"X-API-Key": servers.API_KEY}
    body = json.dumps(MESSAGE).encode()
    throughput: dict[str, Any] = {}
    latency: dict[str, Any] = {}
    with servers.workdir("http") as wd:
        bare = servers.bare_app(wd)
        gw = servers.gateway(wd / "data")
        with servers.running(bare), servers.running(gw):
            have_messages = asyncio.run(_setup_gateway(gw))
            cases: list[Case] = [
                ("bare GET /health", bare, "GET", "/health", b"", {}),
                ("gateway GET /health", gw, "GET", "/health", b"", {}),
                ("gateway GET /devices/{token}", gw, "GET", f"/devices/{TOKEN}", b"", auth),
                ("bare POST /echo", bare, "POST", "/echo", body, {}),
            ]
            if have_messages:
                cases.append(("gateway POST /messages", gw, "POST", "/messages", body, auth))
            rounds_by_case = _interleaved(wrk, cases, rounds, seconds, connections, warmup)
            for name, results in rounds_by_case.items():
                throughput[name] = _median_round(results)
            headers_raw = {"X-API-Key": servers.API_KEY}
            lat_cases = [("bare GET /health", bare, loadgen.http_request("GET", "/health"))]
            if have_messages:
                lat_cases.append(
                    ("gateway POST /messages", gw, loadgen.http_request("POST", "/messages", body, headers_raw))
                )
            lat_cases.append(("gateway GET /health", gw, loadgen.http_request("GET", "/health")))
            lat_cases.append(
                ("gateway GET /devices/{token}", gw, loadgen.http_request("GET", f"/devices/{TOKEN}", b"", headers_raw))
            )
            for name, server, request in lat_cases:
                result = _latency_run(server, request, rate, latency_seconds)
                latency[name] = result
                print(
                    f"  {rate:.0f}/s {name:32} p50 {result['latency_ms'].get('p50', 0):.2f} ms"
                    f"  p99 {result['latency_ms'].get('p99', 0):.2f} ms  ok {result['ok']}/{result['sent']}",
                    flush=True,
                )
            rss = gw.rss_mb()
    return _judge(throughput, latency, have_messages, rss, seconds, connections, rate, latency_seconds, rounds)


def round_ratios(throughput: dict[str, Any], name: str, baseline: str) -> list[float]:
    """``name``'s requests/s over ``baseline``'s, round by round."""
    pairs = zip(throughput[name]["rps_rounds"], throughput[baseline]["rps_rounds"], strict=True)
    return [round(a / b, 3) if b else 0.0 for a, b in pairs]


def _judge(
    throughput: dict[str, Any],
    latency: dict[str, Any],
    have_messages: bool,
    rss: float,
    seconds: float,
    connections: int,
    rate: float,
    latency_seconds: float,
    rounds: int,
) -> dict[str, Any]:
    post_name = "gateway POST /messages" if have_messages else "gateway GET /devices/{token}"
    ratios = round_ratios(throughput, post_name, "bare POST /echo" if have_messages else "bare GET /health")
    ratio = sorted(ratios)[(len(ratios) - 1) // 2]
    health_ratios = round_ratios(throughput, "gateway GET /health", "bare GET /health")
    p99 = latency[post_name]["latency_ms"].get("p99", 0.0)
    targets = {
        "messages_vs_bare_ratio": {
            "value": round(ratio, 3),
            "target": ">= 0.5",
            "verdict": report.verdict(ratio, 0.5, higher_is_better=True),
            "measured_on": post_name,
            "rounds": ratios,
        },
        "messages_p99_ms_at_1000rps": {
            "value": p99,
            "target": "< 20",
            "verdict": report.verdict(p99, 20),
            "measured_on": post_name,
            "rate": rate,
        },
        "health_vs_bare_ratio": {
            "value": sorted(health_ratios)[(len(health_ratios) - 1) // 2],
            "target": "(reported)",
            "verdict": "INFO",
            "rounds": health_ratios,
        },
    }
    return {
        "method": {
            "throughput": f"wrk -t1 -c{connections} -d{seconds}s, keep-alive, after a warm-up run; {rounds} rounds, "
            "each round runs every case back to back; a case reports its median round, a ratio "
            "the median of its per-round ratios",
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
    parser.add_argument("--seconds", type=float, default=5, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--latency-seconds", type=float, default=10)
    args = parser.parse_args()
    result = run(args.seconds, args.connections, args.rate, args.latency_seconds, rounds=args.rounds)
    path = report.write_result("http", result)
    for name, t in result["targets"].items():
        print(f"  {name}: {t['value']} (target {t['target']}) {t['verdict']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

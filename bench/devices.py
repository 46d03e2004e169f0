"""Scale in one process: 1,000 sandbox devices paired and connected, memory,
and a restart that restores them all.

Pairs ``--devices`` devices (``POST /devices`` + ``POST /sandbox/devices/{token}/scan``,
32 at a time), samples the gateway's RSS from /proc/<pid>/status, stops it with
SIGTERM, starts it again on the same DATA_DIR and polls ``GET /devices`` until
every device is connected again.

    python -m bench.devices [--devices 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench import gateway_api, loadgen, report, servers


async def _pair(server: servers.Server, tokens: list[str]) -> dict[str, Any]:
    async with gateway_api.api_client(server) as client:
        report = await gateway_api.pair_devices(client, tokens)
        connected, total = await gateway_api.count_connected(client)
        report["connected"], report["listed"] = connected, total
        return report


async def _restored(server: servers.Server, want: int, timeout: float) -> tuple[float | None, int]:
    async with gateway_api.api_client(server) as client:
        return await gateway_api.wait_connected(client, want, timeout, interval=0.05)


def run(devices: int = 1000, restore_timeout: float = 60) -> dict[str, Any]:
    servers.raise_nofile()
    loadgen.use_uvloop()
    tokens = gateway_api.valid_tokens(devices)
    with servers.workdir("devices") as wd:
        data = wd / "data"
        gw = servers.gateway(data)
        gw.start()
        try:
            gw.wait_ready()
            rss_empty = gw.rss_mb()
            pairing = asyncio.run(_pair(gw, tokens))
            print(f"  paired {pairing['connected']}/{devices} in {pairing['seconds']} s", flush=True)
            time.sleep(1.0)  # let pumps and timers settle before sampling memory
            rss_paired = gw.rss_mb()
            code, stop_s = gw.stop()
        finally:
            gw.stop()
        print(f"  RSS {rss_paired:.1f} MiB with {devices} connected; SIGTERM exit {code} in {stop_s:.2f} s", flush=True)
        gw2 = servers.gateway(data, port=servers.free_port())
        gw2.start()
        try:
            began = gw2.started_at
            ready_s = gw2.wait_ready()
            restored_s, connected = asyncio.run(_restored(gw2, devices, restore_timeout))
            total_s = (time.perf_counter() - began) if restored_s is not None else None
            time.sleep(1.0)
            rss_restored = gw2.rss_mb()
            code2, stop2_s = gw2.stop()
        finally:
            gw2.stop()
    restore = round(total_s, 3) if total_s is not None else None
    print(
        f"  restart: /health after {ready_s:.2f} s, {connected}/{devices} connected after "
        f"{restore if restore is not None else 'timeout'} s",
        flush=True,
    )
    per_device_kib = (rss_paired - rss_empty) * 1024 / devices if devices else 0
    return {
        "method": "pair via POST /devices + sandbox scan (32 concurrent); RSS from /proc/<pid>/status VmRSS; "
        "restart = SIGTERM, start on the same DATA_DIR, poll GET /devices every 50 ms; restore time "
        "counted from process spawn",
        "devices": devices,
        "pairing": pairing,
        "rss_mb": {
            "empty": round(rss_empty, 1),
            "paired": round(rss_paired, 1),
            "restored": round(rss_restored, 1),
            "per_device_kib": round(per_device_kib, 1),
        },
        "shutdown": {"exit_code": code, "seconds": round(stop_s, 3)},
        "restart": {
            "health_s": round(ready_s, 3),
            "all_connected_s": restore,
            "connected": connected,
            "exit_code_after": code2,
            "stop_s": round(stop2_s, 3),
        },
        "targets": {
            "devices_rss_mb": {
                "value": round(rss_paired, 1),
                "target": "< 300",
                "verdict": report.verdict(rss_paired, 300) if pairing["connected"] == devices else "MISS",
            },
            "restart_restore_s": {
                "value": restore,
                "target": "< 10",
                "verdict": report.verdict(restore, 10) if restore is not None else "MISS",
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()
    result = run(args.devices)
    for name, t in result["targets"].items():
        print(f"  {name}: {t['value']} (target {t['target']}) {t['verdict']}")
    print(f"wrote {report.write_result('devices', result)}")


if __name__ == "__main__":
    main()

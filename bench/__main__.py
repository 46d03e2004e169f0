"""``python -m bench`` (``make bench``): run every benchmark, print one table.

Each benchmark module runs as its own subprocess (``python -m bench.<name>``)
with a time budget; each writes ``bench/results/<name>.json``. This collects
their ``targets`` into ``bench/results/summary.json`` and a table. Modules
that do not exist yet are listed as skipped. The soak test is separate
(``make soak``).

    python -m bench [--only http,devices] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench import report, servers
from bench.wrk import ensure_wrk

CAMPAIGNS_QUICK = ["--recipients", "5000", "--minutes", "1", "--scale", "30", "--devices", "3", "--rate", "100",
                   "--seconds", "2", "--rounds", "1"]  # fmt: skip

# (module, time budget in seconds, extra args for --quick)
BENCHMARKS: list[tuple[str, int, list[str]]] = [
    ("http", 400, ["--seconds", "2", "--rounds", "2", "--latency-seconds", "3"]),
    ("fanout", 600, ["--devices", "100", "--seconds", "3"]),
    ("devices", 400, ["--devices", "100"]),
    ("webhooks", 600, []),
    ("csv_export", 600, []),
    ("messages", 900, ["--devices", "10", "--messages", "20000", "--requests", "50"]),
    ("neonize_memory", 600, []),
    ("media", 600, ["--mb", "20", "--recipients", "50"]),
    ("store", 300, ["--devices", "50", "--events", "10"]),
    ("campaigns", 600, CAMPAIGNS_QUICK),
    ("outbox_cluster", 600, ["--backlog", "2000", "--nodes", "2"]),
    ("send_cost", 300, ["--requests", "3000", "--rounds", "1"]),
    ("writer_cost", 300, ["--sends", "10000", "--rounds", "1"]),
    ("failover", 600, ["--devices", "24", "--ttl", "3"]),
    ("cluster", 300, ["--requests", "100", "--warmup", "20"]),
    ("fence", 300, ["--rows", "2000", "--rounds", "3"]),
]


def run_one(name: str, budget: int, args: list[str]) -> dict[str, Any]:
    path = servers.ROOT / "bench" / f"{name}.py"
    if not path.is_file():
        return {"status": "skipped", "reason": f"bench/{name}.py does not exist"}
    result_file = report.RESULTS / f"{name}.json"
    before = result_file.stat().st_mtime if result_file.exists() else None
    print(f"== {name} (budget {budget} s)", flush=True)
    began = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(servers.ROOT)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", *args], cwd=servers.ROOT, env=env, timeout=budget, check=False
        )
        code: int | None = proc.returncode
        status = "ok" if code == 0 else "failed"
    except subprocess.TimeoutExpired:
        code, status = None, "timeout"
    seconds = round(time.perf_counter() - began, 1)
    fresh = result_file.exists() and result_file.stat().st_mtime != before
    data = json.loads(result_file.read_text()) if fresh else None
    if status == "ok" and data is None:
        status = "no-results"
    return {
        "status": status,
        "exit_code": code,
        "seconds": seconds,
        "results": f"bench/results/{name}.json" if fresh else None,
        "data": data,
    }


def targets_of(name: str, data: dict[str, Any] | None) -> list[tuple[str, Any, str, str]]:
    """(figure, value, target, verdict) rows from a module's results; other engineers'
    modules may report ``targets`` too, or only figures."""
    if not data:
        return []
    rows = []
    for key, t in (data.get("targets") or {}).items():
        if isinstance(t, dict):
            rows.append((f"{name}.{key}", t.get("value"), str(t.get("target", "")), str(t.get("verdict", ""))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma list of benchmark names")
    parser.add_argument("--quick", action="store_true", help="small sizes, for checking the harness")
    args = parser.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    wrk = ensure_wrk()
    print(f"wrk: {wrk or 'NOT AVAILABLE'}; load average before: {os.getloadavg()}", flush=True)
    summary: dict[str, Any] = {}
    for name, budget, quick in BENCHMARKS:
        if only and name not in only:
            continue
        summary[name] = run_one(name, budget, quick if args.quick else [])
    rows: list[tuple[str, Any, str, str]] = []
    for name, res in summary.items():
        found = targets_of(name, res.get("data"))
        rows.extend(found)
        if not found:
            rows.append((name, "-", "-", res["status"]))
    print()
    print(report.table(rows, ("figure", "value", "target", "verdict")))
    out = {
        "load_average_after": os.getloadavg(),
        "quick": args.quick,
        "benchmarks": {n: {k: v for k, v in r.items() if k != "data"} for n, r in summary.items()},
        "targets": [{"figure": f, "value": v, "target": t, "verdict": d} for f, v, t, d in rows],
    }
    path = report.write_result("summary", out)
    print(f"\nwrote {path}")
    failed = [n for n, r in summary.items() if r["status"] not in ("ok", "skipped")]
    if failed:
        print(f"benchmarks that did not finish: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Results: ``bench/results/<name>.json`` with when and where it ran, verdicts, plain tables."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


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


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def finish(name: str, out: dict[str, Any]) -> None:
    """A benchmark module's last words: its ``targets`` as a table, then its results written."""
    rows = [(k, v["value"], v["target"], v["verdict"]) for k, v in out["targets"].items()]
    print(table(rows, ("figure", "value", "target", "verdict")))
    print(f"wrote {write_result(name, out)}")

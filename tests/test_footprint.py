"""A single node does not load what only a cluster needs (nats-py, asyncpg: ~14 MiB of RSS together)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, sys
from pathlib import Path
from gateway.app import create_app
from tests.support.asgi import lifespan
from tests.support.settings import make_settings

async def main():
    async with lifespan(create_app(make_settings(Path(sys.argv[1])))):
        pass

asyncio.run(main())
print(sorted({"nats", "asyncpg"} & set(sys.modules)))
"""


def test_a_single_node_loads_neither_the_bus_client_nor_the_postgres_driver(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True, timeout=60, check=False, cwd=root
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr

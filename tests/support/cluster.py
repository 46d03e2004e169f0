"""A cluster of real gateway processes on one machine (CONTRACT §14), shared by tests/cluster/ and
``python -m bench.failover``: N ``python -m gateway`` nodes on the
sandbox driver, one fresh PostgreSQL database and the NATS server, each on its own port, data dir and
``NODE_ID``, with a short lease so faults play out in seconds. The database is read directly (asyncpg)
for what the simulated WhatsApp saw and who holds which lease."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.support.constants import API_KEY
from tests.support.poll import until
from tests.support.proc import ServerProcess

LEASE_TTL_S = 3


class Cluster:
    def __init__(
        self, root: Path, database_url: str, bus_url: str, n: int = 3, ttl_s: int = LEASE_TTL_S, **env: str
    ) -> None:
        self.database_url = database_url
        self.nodes = [
            ServerProcess(
                root / f"n{i}",
                DATABASE_URL=database_url,
                BUS_URL=bus_url,
                NODE_ID=f"n{i}",
                LEASE_TTL_S=str(ttl_s),
                RECONNECT_BASE_MS="50",
                RECONNECT_MAX_MS="500",
                MEDIA_DIR=str(root / "media"),  # one volume every node mounts
                **env,
            )
            for i in range(n)
        ]
        self.ids = [f"n{i}" for i in range(n)]
        self._db: asyncpg.Connection | None = None

    def start(self) -> Cluster:
        for node in self.nodes:  # started together: they join at once and split the devices between them
            node.start(wait=False)
        for node in self.nodes:
            node.wait_ready("/health/ready", 60)
        return self

    def kill(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.signal(signal.SIGCONT)  # a stopped process would not die of SIGTERM
            node.kill()

    def client(self, i: int) -> httpx.AsyncClient:
        # verify=False: plain HTTP to 127.0.0.1, where httpx would otherwise load the CA bundle for every
        # client (18 ms of CPU each: the traffic loops of the fault tests make one per call).
        return httpx.AsyncClient(base_url=self.nodes[i].base, headers={"X-API-Key": API_KEY}, timeout=10, verify=False)

    def alive(self, i: int) -> bool:
        proc = self.nodes[i].proc
        return proc is not None and proc.poll() is None

    # --- through the API -----------------------------------------------------------------------

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """The first live node that runs the device answers (others say DEVICE_MOVING until forwarding; a
        node learns of a device created elsewhere at its next round, DEVICE_NOT_FOUND until then)."""

        async def attempt() -> httpx.Response | None:
            for i in range(len(self.nodes)):
                if not self.alive(i):
                    continue
                async with self.client(i) as c:
                    try:
                        r = await c.request(method, path, **kw)
                    except httpx.HTTPError:
                        continue
                if r.status_code not in (404, 503):
                    return r
            return None

        r: httpx.Response = await until(attempt, 30, f"{method} {path} answered by the device's node")
        return r

    async def add_devices(self, tokens: list[str], parallel: int = 8) -> None:
        """Create and pair each device, round-robin over the nodes (each creates on the node it asks)."""
        slots = asyncio.Semaphore(parallel)

        async def add(n: int, token: str) -> None:
            async with slots, self.client(n % len(self.nodes)) as c:
                r = await c.post("/devices", json={"token": token})
                assert r.status_code == 200, r.text

        async def scan(token: str) -> None:
            async with slots:
                r = await self.call("POST", f"/sandbox/devices/{token}/scan")
            assert r.status_code == 200 and r.json()["data"]["status"] == "connected", r.text

        await asyncio.gather(*(add(n, t) for n, t in enumerate(tokens)))
        await asyncio.gather(*(scan(t) for t in tokens))

    async def detailed(self, i: int) -> dict[str, Any]:
        async with self.client(i) as c:
            r = await c.get("/health/detailed")
        assert r.status_code == 200
        data: dict[str, Any] = r.json()["data"]
        return data

    # --- in the database ----------------------------------------------------------------------

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of ``sql``, on one connection kept for the cluster's life (a connection per read forked a
        server backend for every poll of ``settle``), opened again once when the database restarted."""
        try:
            return await self._fetch(sql, args)
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
            await self.close_db()
            return await self._fetch(sql, args)

    async def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[asyncpg.Record]:
        if self._db is None or self._db.is_closed():
            self._db = await asyncpg.connect(self.database_url)
        return list(await self._db.fetch(sql, *args))

    async def close_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.terminate()

    async def holders(self) -> dict[str, str]:
        """token → node, for every unexpired lease."""
        return {r[0]: r[1] for r in await self.fetch("SELECT token, node FROM device_leases WHERE expires_at > now()")}

    async def open_connections(self) -> dict[str, list[str]]:
        """What the simulated WhatsApp has open: token → the nodes connected (more than one: a double)."""
        out: dict[str, list[str]] = {}
        for r in await self.fetch("SELECT token, node FROM sandbox_connections WHERE closed_at IS NULL ORDER BY id"):
            out.setdefault(r[0], []).append(r[1])
        return out

    async def doubles(self) -> list[asyncpg.Record]:
        """Every connection opened while another live process had the same device connected."""
        return await self.fetch("SELECT token, node, opened_at FROM sandbox_connections WHERE overlapped > 0")

    async def connected_on(self, tokens: list[str], nodes: set[str]) -> bool:
        """Each of ``tokens`` has exactly one open connection, on one of ``nodes``, and its lease there."""
        return _connected_on(tokens, nodes, await self.open_connections(), await self.holders())

    async def settle(self, tokens: list[str], timeout: float = 40) -> dict[str, str]:
        """Wait until every device is connected on a live node and the spread is even; token → node."""
        live = {self.ids[i] for i in range(len(self.nodes)) if self.alive(i)}

        async def even() -> dict[str, str] | None:
            # One snapshot of leases for both checks: a lease may end between two reads while devices move.
            conns, holders = await self.open_connections(), await self.holders()
            if not _connected_on(tokens, live, conns, holders):
                return None
            counts = [sum(1 for t in tokens if holders[t] == n) for n in live]
            return {t: holders[t] for t in tokens} if max(counts) - min(counts) <= 1 else None

        spread: dict[str, str] = await until(even, timeout, "every device connected once, spread evenly")
        return spread


def _connected_on(tokens: list[str], nodes: set[str], conns: dict[str, list[str]], holders: dict[str, str]) -> bool:
    return all(len(conns.get(t, [])) == 1 and conns[t][0] in nodes and holders.get(t) == conns[t][0] for t in tokens)


@contextlib.asynccontextmanager
async def running(root: Path, database_url: str, bus_url: str, n: int = 3, **env: str) -> AsyncIterator[Cluster]:
    """A started :class:`Cluster`, every node killed on leaving (whatever state the test left it in)."""
    cluster = Cluster(root, database_url, bus_url, n, **env)
    try:
        await asyncio.to_thread(cluster.start)
        yield cluster
    finally:
        cluster.kill()
        await cluster.close_db()

"""The cluster's shared rows (CONTRACT §14, PostgreSQL only): live nodes, device leases, fencing.

Every time is the database's ``now()``: nodes never compare their own clocks. A lease is taken only
when nobody holds it or its holder let it expire, renewed only while it has not expired, and each
acquisition draws a new fencing token from one sequence, so a token names one holding of one device.
These run through :meth:`gateway.store.db.Db.direct`, beside the group commit: a busy writer never
delays a renewal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from gateway.store.conn import Conn
from gateway.store.db import Db

log = structlog.get_logger("gateway.store")


@dataclass(frozen=True, slots=True)
class Holding:
    token: str
    node: str
    fence: int


class Fences:
    """The leases this node holds, token → fencing token: what a device's unit of work is checked against.

    Kept by :class:`gateway.cluster.leases.Leases`; read by :mod:`gateway.store.events` (the job is
    built on the event loop with the fence it had then; the job checks the row on the writer).
    """

    def __init__(self, node: str) -> None:
        self.node = node
        self.held: dict[str, int] = {}


class StaleOwner(Exception):
    """A write for a device whose lease this node no longer holds: refused, never committed."""


def check_fence_sync(conn: Conn, node: str, token: str, fence: int | None) -> bool:
    """True if ``node`` still holds ``token``'s lease under ``fence`` (unexpired, on the database's clock)."""
    if fence is None:
        return False
    row = conn.execute(
        "SELECT 1 FROM device_leases WHERE token = ? AND node = ? AND fence = ? AND expires_at > now()",
        (token, node, fence),
    ).fetchone()
    return row is not None


class LeaseQueries:
    db: Db

    # -- nodes ------------------------------------------------------------------------------------

    async def node_beat(self, node: str, ttl_s: float, timeout: float) -> list[str]:
        """Record ``node`` alive now; return the live nodes (heard from within ``ttl_s``), sorted."""
        rows = await self.db.direct(
            "WITH beat AS (INSERT INTO nodes (id) VALUES ($1)"
            " ON CONFLICT (id) DO UPDATE SET heartbeat = now() RETURNING id)"
            " SELECT id FROM nodes WHERE heartbeat > now() - make_interval(secs => $2) AND id <> $1"
            " UNION SELECT id FROM beat ORDER BY 1",
            node,
            float(ttl_s),
            timeout=timeout,
        )
        return [r[0] for r in rows]

    async def node_leave(self, node: str, timeout: float) -> None:
        await self.db.direct("DELETE FROM nodes WHERE id = $1", node, timeout=timeout)

    async def live_leases(self, timeout: float) -> dict[str, str]:
        """Every unexpired lease: token → node."""
        rows = await self.db.direct("SELECT token, node FROM device_leases WHERE expires_at > now()", timeout=timeout)
        return {r[0]: r[1] for r in rows}

    async def device_owners(self, timeout: float) -> dict[str, int | None]:
        """Every device of the registry: token → its account (None: the operator's)."""
        rows = await self.db.direct("SELECT token, owner_id FROM devices", timeout=timeout)
        return {r[0]: r[1] for r in rows}

    # -- leases -----------------------------------------------------------------------------------

    async def acquire_leases(self, node: str, tokens: Sequence[str], ttl_s: float, timeout: float) -> list[Holding]:
        """Take the leases of ``tokens`` nobody holds (or whose holder let them expire); the ones taken."""
        if not tokens:
            return []
        rows = await self.db.direct(
            "INSERT INTO device_leases (token, node, fence, expires_at)"
            " SELECT t, $2, nextval('lease_fence'), now() + make_interval(secs => $3) FROM unnest($1::text[]) t"
            " ON CONFLICT (token) DO UPDATE SET node = EXCLUDED.node, fence = EXCLUDED.fence,"
            " acquired_at = now(), expires_at = EXCLUDED.expires_at WHERE device_leases.expires_at <= now()"
            " RETURNING token, node, fence",
            list(tokens),
            node,
            float(ttl_s),
            timeout=timeout,
        )
        return [Holding(r[0], r[1], int(r[2])) for r in rows]

    async def renew_leases(self, node: str, held: dict[str, int], ttl_s: float, timeout: float) -> set[str]:
        """Extend the leases ``node`` holds (token → fence) that have not expired; the tokens renewed."""
        if not held:
            return set()
        tokens, fences = list(held), [held[t] for t in held]
        rows = await self.db.direct(
            "UPDATE device_leases l SET expires_at = now() + make_interval(secs => $4)"
            " FROM unnest($2::text[], $3::bigint[]) AS h(token, fence)"
            " WHERE l.token = h.token AND l.fence = h.fence AND l.node = $1 AND l.expires_at > now()"
            " RETURNING l.token",
            node,
            tokens,
            fences,
            float(ttl_s),
            timeout=timeout,
        )
        return {r[0] for r in rows}

    async def release_leases(self, node: str, held: dict[str, int], timeout: float) -> None:
        """Give up leases (token → fence) so another node may take them at once."""
        if not held:
            return
        tokens, fences = list(held), [held[t] for t in held]
        await self.db.direct(
            "DELETE FROM device_leases l USING unnest($2::text[], $3::bigint[]) AS h(token, fence)"
            " WHERE l.token = h.token AND l.fence = h.fence AND l.node = $1",
            node,
            tokens,
            fences,
            timeout=timeout,
        )

    async def release_claims_of(self, nodes: Sequence[str], timeout: float) -> int:
        """Webhook deliveries claimed by ``nodes`` (gone from the live list) go back to the queue. Only theirs:
        a node that is starting claims before its first heartbeat, and must keep its claims."""
        rows = await self.db.direct(
            "UPDATE outbox SET claimed_by = NULL, claim_until = NULL"
            " WHERE claimed_by = ANY($1::text[]) AND status = 'pending' RETURNING id",
            list(nodes),
            timeout=timeout,
        )
        return len(rows)

"""The live nodes: each node's heartbeat row, judged on the database's clock like the leases."""

from __future__ import annotations

from gateway.store import Store


class Membership:
    """This node's heartbeat, and the nodes heard from within ``ttl_s`` (this one included)."""

    def __init__(self, store: Store, node: str, ttl_s: float) -> None:
        self.store = store
        self.node = node
        self.ttl_s = ttl_s
        self.timeout_s = max(0.5, ttl_s / 3)
        self.live: list[str] = [node]

    async def beat(self) -> list[str]:
        """Say this node is alive; return the live nodes, sorted (the spread's order)."""
        self.live = await self.store.node_beat(self.node, self.ttl_s, self.timeout_s)
        return self.live

    async def leave(self) -> None:
        """A clean stop: the others count this node out at once instead of after ``ttl_s``."""
        await self.store.node_leave(self.node, self.timeout_s)

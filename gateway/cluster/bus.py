"""The connection to NATS (``BUS_URL``) that the cluster's nodes talk over.

The smallest form: connected, reconnecting by itself, and whether it is connected now (``/health/ready``
says a node has joined only while it is). Publishing, subscribing and requests build on it.
"""

from __future__ import annotations

import nats
import structlog
from nats.aio.client import Client

log = structlog.get_logger("gateway.cluster")


class Bus:
    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.nc: Client | None = None

    async def start(self) -> None:
        """Connect (an unreachable bus stops start-up); afterwards nats-py reconnects on its own, forever."""

        async def disconnected() -> None:
            log.warning("bus.disconnected", node=self.name)

        async def reconnected() -> None:
            log.info("bus.reconnected", node=self.name)

        async def error(exc: Exception) -> None:
            log.warning("bus.error", node=self.name, error=str(exc))

        self.nc = await nats.connect(
            self.url,
            name=self.name,
            connect_timeout=5,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
        )

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def stop(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

"""Waiting until the NATS server has what a bus sent."""

from __future__ import annotations

from gateway.cluster.bus import Bus


async def synced(bus: Bus) -> None:
    """Return once the server has processed every command ``bus`` has sent so far — a subscription just
    made above all. nats-py's ``flush()`` writes its PING straight to the socket, ahead of the commands
    still queued for its flusher task, so one flush can come back before the server has the SUB made just
    before it (three full suite runs in twenty-one sent into that gap). The first round trip lets the
    flusher write its queue; the second PING follows it on the wire, so its PONG means the server has it."""
    nc = bus._nc
    assert nc is not None, "the bus is not connected"
    await nc.flush()
    await nc.flush()

"""Drivers: how the gateway reaches WhatsApp (see :mod:`gateway.drivers.base`)."""

from __future__ import annotations

from gateway.drivers.base import Driver, DriverOptions


def make_driver(kind: str, token: str, options: DriverOptions, jid: str | None = None) -> Driver:
    """Build the driver named by ``WA_DRIVER`` for one device; ``jid`` is the WhatsApp device the registry
    recorded for it (neonize resumes that session from a shared database)."""
    if kind == "sandbox":
        from gateway.drivers.sandbox import SandboxDriver

        return SandboxDriver(token, options)
    if kind == "neonize":
        from gateway.drivers.neonize import NeonizeDriver

        return NeonizeDriver(token, options, jid)
    raise ValueError(f"unknown driver {kind!r}")

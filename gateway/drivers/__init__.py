"""Drivers: how the gateway reaches WhatsApp (see :mod:`gateway.drivers.base`)."""

from __future__ import annotations

from gateway.drivers.base import Driver, DriverOptions


def make_driver(kind: str, token: str, options: DriverOptions) -> Driver:
    """Build the driver named by ``WA_DRIVER`` for one device."""
    if kind == "sandbox":
        from gateway.drivers.sandbox import SandboxDriver

        return SandboxDriver(token, options)
    if kind == "neonize":
        from gateway.drivers.neonize import NeonizeDriver

        return NeonizeDriver(token, options)
    raise ValueError(f"unknown driver {kind!r}")

"""Devices: linked WhatsApp numbers and everything that keeps them running.

=================  ==============================================================
``device``         one device: the status state machine and the actions on it
``pump``           the per-device task that applies its driver's events, in order
``reconnect``      the backoff loop that brings a dropped paired device back
``manager``        owns every device: create, find, restore at start, close at stop
``counters``       the send counters, written behind in one batch for all devices
``views``          what the API shows of a device (state, summary)
=================  ==============================================================
"""

from __future__ import annotations

from gateway.devices.counters import STATS_FLUSH_S
from gateway.devices.device import Device
from gateway.devices.manager import DeviceManager, DriverFactory

__all__ = ["STATS_FLUSH_S", "Device", "DeviceManager", "DriverFactory"]

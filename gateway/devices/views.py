"""What the API shows of a device: its full state (``GET /devices/{token}``, the
``session_update`` frame) and the one-line summary of device lists.

Views read the device and never change it; they are the only place that
decides which fields a client sees (the phone number masked, the QR reported
only as present).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gateway.phones import mask
from gateway.store.devices import DeviceRow

if TYPE_CHECKING:
    from gateway.devices.device import Device


def state(device: Device) -> dict[str, Any]:
    """The device's full state, as ``GET /devices/{token}`` and ``session_update`` frames carry it."""
    r = device.row
    return {
        "token": r.token,
        "status": r.status,
        "reconnecting": r.reconnecting,
        "ready": r.status == "connected",
        "authenticated": r.status == "connected" or device.driver.is_paired(),
        "hasQR": device.qr is not None,
        "pairingCode": device.pairing_code if r.status == "pairing" else None,
        "info": {"pushname": r.pushname, "platform": r.platform, "phoneMasked": mask(r.phone)},
        "uptime": round(time.monotonic() - device.connected_mono, 3) if device.connected_mono else 0,
        "stats": {"messagesSent": r.messages_sent, "messagesReceived": r.messages_received},
        "lastUpdate": r.last_update,
        "name": r.name,
        "webhookUrl": r.webhook_url,
        "webhookEvents": r.webhook_events,
        "webhookSecretSet": r.webhook_secret is not None,
        "lastError": device.last_error,
    }


def summary(device: Device) -> dict[str, Any]:
    """One entry of ``GET /devices`` and of the WebSocket ``devices`` frame."""
    return row_summary(device.row)


def row_summary(r: DeviceRow) -> dict[str, Any]:
    """The same for a registry row (a device another node of the cluster runs)."""
    return {
        "token": r.token,
        "name": r.name,
        "status": r.status,
        "method": r.method,
        "pushname": r.pushname,
        "createdAt": r.created_at,
        "connectedAt": r.connected_at,
    }

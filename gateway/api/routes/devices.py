"""``/devices``: pair, list, inspect, update, disconnect, delete."""

from __future__ import annotations

import io
from typing import Any, cast

import segno
from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.envelope import ok
from gateway.api.errors import ApiError, invalid
from gateway.api.models.base import MAX_DEVICE_NAME
from gateway.api.models.decode import read
from gateway.api.models.requests import DeviceCreate, DeviceUpdate
from gateway.api.models.responses import (
    DeviceDeleted,
    DeviceList,
    DeviceOpened,
    DeviceState,
    DeviceSummary,
    Group,
    GroupList,
    QrCode,
    of,
)
from gateway.api.routes.common import (
    checked_webhook_url,
    path_token,
    principal,
    require_token,
    token_from,
    visible_device,
    webhook_events_from,
    webhook_secret_from,
)
from gateway.devices import Device
from gateway.drivers.base import Method
from gateway.runtime import runtime


async def _device_fields(request: Request, body: DeviceUpdate) -> dict[str, Any]:
    """Optional ``name`` / ``webhookUrl`` / ``webhookEvents`` / ``webhookSecret`` → DeviceRow fields
    (absent: unchanged)."""
    out: dict[str, Any] = {}
    if body.name is not UNSET:
        name = body.name
        if name is not None and len(name) > MAX_DEVICE_NAME:
            raise invalid(f"'name' is longer than {MAX_DEVICE_NAME} characters")
        out["name"] = (name.strip() or None) if name is not None else None
    if body.webhook_url is not UNSET:
        tenant = not principal(request).is_admin
        out["webhook_url"] = await checked_webhook_url(request, body.webhook_url, tenant)
    if body.webhook_events is not UNSET:
        out["webhook_events"] = webhook_events_from(body.webhook_events)
    if body.webhook_secret is not UNSET:
        out["webhook_secret"] = webhook_secret_from(body.webhook_secret)
    return out


def state(device: Device) -> DeviceState:
    return of(DeviceState, device.state())


def _changed(request: Request, token: str) -> None:
    """In a cluster, the other nodes read the device's webhook settings again (gateway.cluster.invalidate)."""
    inv = runtime(request).invalidations
    if inv is not None:
        inv.device_changed(token)


async def create(request: Request) -> Response:
    body = await read(request, DeviceCreate)
    require_token(body.token)
    method = body.method or "qr"
    if method not in ("qr", "code"):
        raise ApiError("INVALID_METHOD", "method must be 'qr' or 'code'")
    token = token_from(body.token, request)
    fields = await _device_fields(request, body)
    p = principal(request)
    rt = runtime(request)
    rt.accounts.check_device_quota(p, token)
    device = await rt.devices.open(token, cast(Method, method), p.account_id, p.is_admin, fields)
    _changed(request, token)
    message = {
        "connected": "device connected",
        "pairing": "QR code sent via WebSocket" if method == "qr" else "pairing code sent via WebSocket",
    }.get(device.status, "connecting")
    return ok(DeviceOpened(token=token, method=cast(Method, method), status=device.status), message)


async def list_devices(request: Request) -> Response:
    p = principal(request)
    listed = await runtime(request).devices.listed(p.account_id, p.is_admin)
    return ok(DeviceList(devices=[of(DeviceSummary, s) for s in listed]), "devices")


async def get_device(request: Request) -> Response:
    device = visible_device(request, path_token(request))
    return ok(state(device), "device state")


async def update(request: Request) -> Response:
    token = path_token(request)
    body = await read(request, DeviceUpdate)
    device = visible_device(request, token)
    await device.update(**(await _device_fields(request, body)))
    _changed(request, device.token)
    return ok(state(device), "device updated")


async def qr(request: Request) -> Response:
    """``GET /devices/{token}/qr``: JSON, or with ``?format=png|svg`` the image (also at ``qr.png``/``qr.svg``)."""
    device = visible_device(request, path_token(request))
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "png", "svg"):
        raise invalid("'format' must be json, png or svg")
    return _qr(device, fmt)


async def qr_png(request: Request) -> Response:
    return _qr(visible_device(request, path_token(request)), "png")


async def qr_svg(request: Request) -> Response:
    return _qr(visible_device(request, path_token(request)), "svg")


def _qr(device: Device, fmt: str) -> Response:
    if fmt == "json":
        return ok(QrCode(has_qr=device.qr is not None, qr=device.qr), "qr")
    if device.qr is None:
        raise ApiError("NOT_FOUND", "no QR code for this device right now")
    code = segno.make(device.qr, error="l")
    if fmt == "svg":
        buf = io.BytesIO()
        # A standalone document (with xmlns) that browsers and image tools both accept.
        code.save(buf, kind="svg", scale=8, border=4, dark="#111", light="#fff", xmldecl=False)
        return Response(buf.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})
    buf = io.BytesIO()
    code.save(buf, kind="png", scale=8, border=4)
    return Response(buf.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"})


async def disconnect(request: Request) -> Response:
    device = visible_device(request, path_token(request))
    await device.disconnect()
    return ok(state(device), "device disconnected")


async def reset_stats(request: Request) -> Response:
    device = visible_device(request, path_token(request))
    await device.reset_stats()
    return ok(state(device), "stats reset")


async def groups(request: Request) -> Response:
    device = visible_device(request, path_token(request))
    found = await device.groups()
    data = [
        Group(
            jid=g.jid,
            name=g.name,
            topic=g.topic,
            owner=g.owner,
            participant_count=g.participant_count,
            is_admin=g.is_admin,
            is_super_admin=g.is_super_admin,
        )
        for g in found
    ]
    return ok(GroupList(groups=data, count=len(data)), "groups")


async def delete(request: Request) -> Response:
    token = path_token(request)
    purge = request.query_params.get("purge", "false")
    if purge not in ("true", "false", "1", "0"):
        raise invalid("'purge' must be true or false")
    visible_device(request, token)
    await runtime(request).devices.remove(token, purge in ("true", "1"))
    _changed(request, token)
    return ok(
        DeviceDeleted(token=token, status="logged_out", purged=purge in ("true", "1")), "device logged out and deleted"
    )


routes = [
    Route("/devices", create, methods=["POST"]),
    Route("/devices", list_devices, methods=["GET"]),
    Route("/devices/{token}", get_device, methods=["GET"]),
    Route("/devices/{token}", update, methods=["PATCH"]),
    Route("/devices/{token}", delete, methods=["DELETE"]),
    Route("/devices/{token}/qr", qr, methods=["GET"]),
    Route("/devices/{token}/qr.png", qr_png, methods=["GET"]),
    Route("/devices/{token}/qr.svg", qr_svg, methods=["GET"]),
    Route("/devices/{token}/disconnect", disconnect, methods=["POST"]),
    Route("/devices/{token}/stats/reset", reset_stats, methods=["POST"]),
    Route("/devices/{token}/groups", groups, methods=["GET"]),
]

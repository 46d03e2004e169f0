"""What every route module needs: the caller, checked path/query values, a device.

Bodies are read by :func:`gateway.api.models.decode.read` into their models."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from gateway.api.errors import ApiError, device_not_found, invalid
from gateway.auth import ADMIN, Principal
from gateway.devices import Device
from gateway.phones import InvalidPhone, normalize
from gateway.runtime import runtime
from gateway.settings import WEBHOOK_EVENT_NAMES
from gateway.webhooks.keys import check_device_secret
from gateway.webhooks.urls import NOT_PUBLIC, check_webhook_url, resolves_private, syntax_ok


def principal(conn: HTTPConnection) -> Principal:
    p: Principal | None = conn.scope.get("state", {}).get("principal")
    return p if p is not None else ADMIN


def require_admin(conn: HTTPConnection) -> None:
    if not principal(conn).is_admin:
        raise ApiError("FORBIDDEN", "this route needs the admin key")


def raw_header(conn: HTTPConnection, name: bytes) -> str | None:
    """One header (``name`` in lower case), read off the raw list: no Headers object for one lookup."""
    headers: list[tuple[bytes, bytes]] = conn.scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def require_token(value: Any) -> None:
    """MISSING_TOKEN when ``token`` is absent or blank (checked before the other fields)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ApiError("MISSING_TOKEN", "token is required")


def token_from(value: Any, conn: HTTPConnection) -> str:
    """A device token (phone digits) from a body field or path: MISSING_TOKEN / INVALID_PHONE."""
    require_token(value)
    return phone_from(value, conn, "token")


def phone_from(value: Any, conn: HTTPConnection, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError("INVALID_PHONE", f"'{name}' must be a phone number")
    try:
        return normalize(value, runtime(conn).settings.default_country_code)
    except InvalidPhone as exc:
        raise ApiError("INVALID_PHONE", f"'{name}': {exc}") from exc


def path_token(conn: HTTPConnection) -> str:
    return token_from(conn.path_params.get("token"), conn)


def visible_device(conn: HTTPConnection, token: str) -> Device:
    """The device if it exists and the caller may see it; else DEVICE_NOT_FOUND (never FORBIDDEN)."""
    devices = runtime(conn).devices
    device = devices.get(token)
    if device is None:
        devices.check_elsewhere(token, principal(conn).can_see)  # a cluster's device on no node / another node
        raise device_not_found(token)
    if not principal(conn).can_see(device.row.owner_id):
        raise device_not_found(token)
    return device


SQL_INT_MAX = 2**63 - 1  # SQLite's INTEGER range: anything larger cannot be a row count or offset


def query_int(conn: HTTPConnection, name: str, default: int, lo: int, hi: int = SQL_INT_MAX) -> int:
    """A whole-number query parameter within ``[lo, hi]``, else INVALID_REQUEST."""
    raw = conn.query_params.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > 20 or not raw.isascii() or not raw.lstrip("-").isdigit():
        raise invalid(f"'{name}' must be a whole number")
    value = int(raw)
    if value < lo or value > hi:
        raise invalid(f"'{name}' must be between {lo} and {hi}")
    return value


async def checked_webhook_url(conn: HTTPConnection, raw: Any, tenant: bool) -> str | None:
    """A ``webhookUrl`` value: None clears it; http(s) only; a tenant's URL may not be, or
    resolve to, a non-public address (gateway.net.addresses) unless WEBHOOK_ALLOW_PRIVATE."""
    if raw is None:
        return None
    url: str = raw.strip(" ")  # spaces around are forgiven; CR, LF, tab anywhere are refused (syntax_ok)
    if not url:
        return None
    allow_private = runtime(conn).settings.webhook_allow_private
    check_webhook_url(url, tenant=tenant, allow_private=allow_private)
    if tenant and not allow_private:
        host, port = syntax_ok(url)
        if await resolves_private(host, port):
            raise invalid(NOT_PUBLIC + " (or not resolve)")
    return url


def webhook_secret_from(value: str | None) -> str | None:
    """A device's ``webhookSecret``: None clears it; else a usable signing secret (see
    :func:`gateway.webhooks.keys.check_device_secret`)."""
    if value is None:
        return None
    problem = check_device_secret(value)
    if problem is not None:
        raise invalid(problem)
    return value


def webhook_events_from(value: Any) -> list[str] | None:
    """A ``webhookEvents`` value: None means all events; else known event names, sorted, once each."""
    if value is None:
        return None
    if not all(isinstance(e, str) for e in value):
        raise invalid("'webhookEvents' must be an array of event names")
    unknown = set(value) - WEBHOOK_EVENT_NAMES
    if unknown:
        raise invalid(f"unknown webhook event(s): {', '.join(sorted(unknown))}")
    return sorted(set(value))

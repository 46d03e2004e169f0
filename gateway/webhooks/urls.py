"""Webhook URL rules: http(s) only, and for URLs set by tenants no loopback,
private or link-local destinations (checked when set and again at delivery,
since DNS can change between the two)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from gateway.api.errors import invalid


def syntax_ok(url: str) -> tuple[str, int]:
    """``(host, port)`` of a well-formed http(s) URL, else INVALID_REQUEST."""
    if len(url) > 2048:
        raise invalid("'webhookUrl' is too long")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise invalid("'webhookUrl' is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("'webhookUrl' must be an http(s) URL")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def is_blocked_ip(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return (
        addr.is_loopback
        or addr.is_private
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


async def resolves_private(host: str, port: int) -> bool:
    """True if ``host`` is, or resolves to, any blocked address (or does not resolve)."""
    try:
        return is_blocked_ip(host)
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return True
    return any(is_blocked_ip(str(info[4][0])) for info in infos)


def check_webhook_url(url: str, tenant: bool, allow_private: bool) -> None:
    """Synchronous checks at the time a URL is set (the address check for literal IPs and
    well-known local names; DNS names are checked again at delivery)."""
    host, _port = syntax_ok(url)
    if not tenant or allow_private:
        return
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        raise invalid("'webhookUrl' may not point at a loopback, private or link-local address")
    try:
        blocked = is_blocked_ip(host.strip("[]"))
    except ValueError:
        return
    if blocked:
        raise invalid("'webhookUrl' may not point at a loopback, private or link-local address")

"""Webhook URL rules at the time a URL is set: http(s) only, no control characters, and for URLs set
by tenants no loopback, private, link-local or otherwise non-public destination (the policy of
:mod:`gateway.net.addresses`). Delivery applies the same policy again inside the connector, to the
very address it connects to (DNS may change between the two)."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from gateway.api.errors import invalid
from gateway.net.addresses import has_control_character, host_refused, is_public_ip

NOT_PUBLIC = "'webhookUrl' may not point at a loopback, private, link-local or otherwise non-public address"


def syntax_ok(url: str) -> tuple[str, int]:
    """``(host, port)`` of a well-formed http(s) URL, else INVALID_REQUEST."""
    if len(url) > 2048:
        raise invalid("'webhookUrl' is too long")
    if has_control_character(url):  # urlsplit would silently drop CR, LF and tab: refuse them here
        raise invalid("'webhookUrl' may not contain control characters (CR, LF, tab, NUL …)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise invalid("'webhookUrl' is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("'webhookUrl' must be an http(s) URL")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolves_private(host: str, port: int) -> bool:
    """True if ``host`` is, or resolves to, any address the policy refuses (or does not resolve)."""
    if host_refused(host):
        return True
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return True
    return not all(is_public_ip(str(info[4][0])) for info in infos)


def check_webhook_url(url: str, tenant: bool, allow_private: bool) -> None:
    """Synchronous checks at the time a URL is set: the syntax, and for a tenant the address policy
    on literal IPs and local names (DNS names are resolved by :func:`resolves_private`)."""
    host, _port = syntax_ok(url)
    if tenant and not allow_private and host_refused(host):
        raise invalid(NOT_PUBLIC)

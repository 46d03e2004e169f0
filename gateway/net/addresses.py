"""The one address policy: which IP addresses a tenant's URL may reach, and the set-time URL rules.

A guarded (tenant) request may connect only to a *public* address: one that Python's
``ipaddress`` calls global, and that is none of the ranges below, which some Python versions
still call global or which wrap another address:

- IPv4 shared address space ``100.64.0.0/10`` (carrier-grade NAT; cloud metadata such as
  ``100.100.100.200`` lives there), multicast, unspecified, reserved;
- IPv6 ``2002::/16`` (6to4: an IPv4 address inside), ``fec0::/10`` (deprecated site-local),
  multicast, unspecified, any address with a zone (``%eth0``);
- IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``) and NAT64 (``64:ff9b::/96``)
  IPv6 addresses are judged by the IPv4 address they carry; the local-use NAT64 prefix
  ``64:ff9b:1::/48`` is refused.

The same policy is applied when a URL is set (literal addresses and local names, without DNS) and
when it is used (inside the connector, on every address DNS answers).
"""

from __future__ import annotations

import ipaddress
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REFUSED_V4: Final = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # shared address space (CGNAT), cloud metadata
        "192.0.0.0/24",  # IETF protocol assignments
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
_REFUSED_V6: Final = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2002::/16",  # 6to4
        "fec0::/10",  # site-local (deprecated, still routed inside some networks)
        "64:ff9b:1::/48",  # local-use NAT64
        "2001::/32",  # Teredo
        "ff00::/8",  # multicast
    )
)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")

LOCAL_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: mapped, compatible (``::a.b.c.d``, incl. ``::``
    and ``::1``, which then judge as ``0.0.0.0`` and ``0.0.0.1``) or NAT64; else None."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    value = int(addr)
    if value >> 32 == 0:
        return ipaddress.IPv4Address(value)
    if addr in _NAT64:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


def is_public(addr: IPAddress) -> bool:
    """Whether a guarded request may connect to ``addr``."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:
            return False
        inner = embedded_ipv4(addr)
        if inner is not None:
            return is_public(inner)
        if any(addr in net for net in _REFUSED_V6):
            return False
    elif any(addr in net for net in _REFUSED_V4):
        return False
    return addr.is_global and not (addr.is_multicast or addr.is_unspecified or addr.is_reserved)


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address (brackets and an IPv6 zone allowed), or None when it is a name."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_public_ip(text: str) -> bool:
    """:func:`is_public` for an address in text; False for anything that is not an address."""
    addr = parse_ip(text)
    return addr is not None and is_public(addr)


def is_local_name(host: str) -> bool:
    """Names that mean this machine whatever DNS says (``localhost`` and its subdomains)."""
    name = host.lower().rstrip(".")
    return name in LOCAL_NAMES or name.endswith(".localhost")


def host_refused(host: str) -> bool:
    """Refused before any DNS: a literal address that is not public, or a local name.
    (A name that *resolves* to a refused address is caught by the resolver.)"""
    addr = parse_ip(host)
    if addr is not None:
        return not is_public(addr)
    return is_local_name(host)


def has_control_character(text: str) -> bool:
    """CR, LF, tab, NUL or any other C0/C1 control character, or DEL (a URL never needs one raw)."""
    return any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text)

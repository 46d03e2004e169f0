"""What a request through :class:`gateway.net.GuardedClient` raises when it got no complete answer.

A timeout is the built-in :class:`TimeoutError`; everything else is a :class:`NetError`, whose
message is short and safe to show a tenant (it names no internal address).
"""

from __future__ import annotations


class NetError(Exception):
    """A request that did not get a complete answer."""


class Blocked(NetError):
    """The URL's host is, or resolves only to, addresses a guarded request may not reach."""


class InvalidUrl(NetError):
    """The URL cannot be requested at all (unparseable, not http(s), no host): no retry can help."""


class ConnectFailed(NetError):
    """No connection: refused, unreachable, the name does not resolve, or TLS refused the peer."""


class BadResponse(NetError):
    """The peer answered, but not with a complete, well-formed HTTP response (garbage, headers too
    large, a body cut short by a closed connection)."""


class BlockedAddress(OSError):
    """Raised by the guarded resolver (an ``OSError``, as aiohttp expects of a resolver): every
    address of the name is refused. The client turns it into :class:`Blocked`."""

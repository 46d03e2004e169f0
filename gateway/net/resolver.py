"""An aiohttp resolver for guarded requests: answers only the public addresses of a name.

It wraps another resolver (aiohttp's default: ``getaddrinfo`` on a thread) and drops every address
:func:`gateway.net.addresses.is_public` refuses; when none remains it raises
:class:`~gateway.net.errors.BlockedAddress`. Because the connector connects to exactly what its
resolver answered, the address checked is the address connected to: there is no second lookup a
rebinding DNS server could answer differently. (Literal IP hosts never reach a resolver; the client
checks those itself.)
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from gateway.net.addresses import is_local_name, is_public_ip
from gateway.net.errors import BlockedAddress


class GuardedResolver(AbstractResolver):
    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if is_local_name(host):
            raise BlockedAddress(f"{host} is a local name")
        answers = await self.inner.resolve(host, port, family)
        public = [a for a in answers if is_public_ip(a["host"])]
        if not public:
            raise BlockedAddress(f"{host} resolves only to loopback, private or otherwise non-public addresses")
        return public

    async def close(self) -> None:
        await self.inner.close()

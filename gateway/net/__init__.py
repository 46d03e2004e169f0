"""Outbound HTTP for URLs the gateway is given: webhook targets and media URLs.

- ``addresses``: the one address policy (which IPs a tenant's URL may reach) and the set-time URL checks;
- ``resolver``: an aiohttp resolver that drops refused addresses, so a connection goes to the very
  address that was checked (no second resolution: DNS rebinding cannot slip in between);
- ``client``: :class:`GuardedClient`, the one HTTP client (bounded headers and bodies, no redirects,
  no proxies from the environment, no cookies, TLS verified);
- ``errors``: what a request that did not get a complete answer raises.
"""

from __future__ import annotations

from gateway.net.client import GuardedClient, Reply, Response
from gateway.net.errors import BadResponse, Blocked, ConnectFailed, InvalidUrl, NetError

__all__ = ["BadResponse", "Blocked", "ConnectFailed", "GuardedClient", "InvalidUrl", "NetError", "Reply", "Response"]

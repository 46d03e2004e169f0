"""A fake of the dispatcher's HTTP seam (:class:`gateway.webhooks.dispatcher.Poster`) over an httpx handler.

Unit tests of the dispatcher's scheduling fake deliveries with respx routes or plain handlers:
``HttpxPoster(handler)`` builds the ``httpx.Request`` the handler sees, honours ``timeout_s`` and
maps httpx's errors onto :mod:`gateway.net`'s, as the real client does for aiohttp's. The real
client is exercised against real sockets in tests/net/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import httpx

from gateway.net import BadResponse, Blocked, ConnectFailed, Reply

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class HttpxPoster:
    def __init__(self, handler: Handler, *, blocked: Callable[[str], bool] = lambda url: False) -> None:
        self.transport = httpx.MockTransport(handler)
        self.blocked = blocked  # which URLs a guarded post refuses (as if they resolved to 127.0.0.1)
        self.posts: list[tuple[str, bool]] = []  # (url, guarded) of every post, refused ones included

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, guarded: bool, timeout_s: float
    ) -> Reply:
        self.posts.append((url, guarded))
        if guarded and self.blocked(url):
            raise Blocked("the host resolves only to loopback, private or otherwise non-public addresses")
        request = httpx.Request("POST", url, headers=dict(headers), content=body)
        try:
            async with asyncio.timeout(timeout_s):
                response = await self.transport.handle_async_request(request)
                await response.aread()
        except httpx.TimeoutException as exc:
            raise TimeoutError from exc
        except httpx.ConnectError as exc:
            raise ConnectFailed(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise BadResponse(f"malformed response: {exc}") from exc
        return Reply(response.status_code, response.headers)

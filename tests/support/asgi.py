"""Serve an ASGI app in-process, as uvicorn would but without a socket.

Booting uvicorn costs a test ~0.35 s (its startup, its 0.1 s main-loop tick and the
0.1 s pause in its shutdown); an HTTP-only test needs none of it. What uvicorn adds
that the app can see is reproduced here: the lifespan (startup/shutdown and its
``state``), the proxy-headers middleware with the same trusted addresses, a client
address in the scope (the gate rate-limits and logs by it), and one task per request
(so context variables a request binds never leak into the test or the next request).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import httpx
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

Message = dict[str, Any]
ASGIApp = Any  # an ASGI 3 callable; starlette's and uvicorn's types do not agree on one name

CLIENT = ("127.0.0.1", 50000)  # where in-process requests come from, as a loopback peer would


class LifespanError(RuntimeError):
    """The app refused to start (``lifespan.startup.failed``) or failed to stop."""


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[dict[str, Any]]:
    """Run the app's lifespan around the block; yields the lifespan ``state`` (copied into each request)."""
    state: dict[str, Any] = {}
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}
    # Its own task, as in uvicorn: what the lifespan starts inherits that task's context.
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))

    async def step(send: str, expect: str) -> None:
        await inbox.put({"type": send})
        getter = asyncio.ensure_future(outbox.get())
        done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            task.result()  # the app raised: let its exception through
            raise LifespanError(f"the app returned during {send} without answering")
        message = getter.result()
        if message["type"] != expect:
            raise LifespanError(f"{send}: {message.get('message') or message['type']}")

    try:
        await step("lifespan.startup", "lifespan.startup.complete")
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    try:
        yield state
    finally:
        await step("lifespan.shutdown", "lifespan.shutdown.complete")
        await task


class PerRequestTask:
    """Wraps an app so every request runs in its own task with the lifespan state, like uvicorn."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope = {**scope, "state": dict(self.state)}
        # Awaiting the task ties their fates: cancelling the caller cancels the request.
        await asyncio.create_task(self.app(scope, receive, send))


def transport(app: ASGIApp, state: dict[str, Any], trusted_proxies: Sequence[str]) -> httpx.ASGITransport:
    """An httpx transport into ``app``: proxy headers believed only from ``trusted_proxies`` (uvicorn's
    ``forwarded_allow_ips``), requests from ``CLIENT``, an app error answered 500 as a server would."""
    wrapped = ProxyHeadersMiddleware(cast(Any, PerRequestTask(app, state)), trusted_hosts=list(trusted_proxies))
    return httpx.ASGITransport(app=cast(Any, wrapped), client=CLIENT, raise_app_exceptions=False)

"""The gate every HTTP request passes (pure ASGI, outermost after request ids):
auth → rate limit → body size, in the contract's order; one access-log line;
and the last line of defence that turns any escaped exception into
``INTERNAL_ERROR`` without a stack trace in the body.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.envelope import fail
from gateway.errors import ApiError
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.http")

MAX_BODY = 1024 * 1024
PUBLIC_EXACT = frozenset(
    {"/health", "/health/live", "/health/ready", "/docs", "/openapi.json", "/", "/console", "/favicon.ico"}
)
PUBLIC_PREFIX = ("/static/", "/docs/")
OPEN_AUTH = frozenset({"/auth/login", "/auth/signup"})  # they authenticate themselves
UNLIMITED_PREFIX = "/health"


def is_public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIX)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class GuardMiddleware:
    def __init__(self, app: ASGIApp, get_runtime: Callable[[], Runtime | None]) -> None:
        self.app = app
        self.get_runtime = get_runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        started_response = False

        async def send_tracking(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
            await send(message)

        try:
            rejection = await self._check(scope)
            if rejection is not None:
                await rejection(scope, receive, send_tracking)
            else:
                await self.app(scope, self._limit_body(receive), send_tracking)
        except Exception:
            log.exception("http.unhandled", path=scope.get("path"))
            if not started_response:
                await fail("INTERNAL_ERROR", "internal error", 500)(scope, receive, send_tracking)
        finally:
            route = scope.get("route")
            # Never the raw path: a 401/429 on a made-up URL must not add a metric label.
            template = getattr(route, "path", None) or "unmatched"
            scope.setdefault("state", {})["route_template"] = template
            duration = time.perf_counter() - started
            rt = self.get_runtime()
            if rt is not None and "metrics" in rt.services:
                rt.services["metrics"].observe_http(scope["method"], template, status, duration)
            log.info(
                "http.request",
                method=scope["method"],
                route=template,
                status=status,
                duration_ms=round(duration * 1000, 2),
                token=(scope.get("path_params") or {}).get("token"),
            )

    async def _check(self, scope: Scope) -> ASGIApp | None:
        rt = self.get_runtime()
        path: str = scope["path"]
        state = scope.setdefault("state", {})
        if rt is None:
            return None
        limited = not path.startswith(UNLIMITED_PREFIX)
        if is_public(path) or path in OPEN_AUTH or path == "/ws":
            if path in OPEN_AUTH:
                principal = await rt.auth.authenticate(HTTPConnection(scope))
                state["principal"] = principal
            if limited and path != "/ws":
                wait = rt.limiter.hit("addr:" + client_address(scope))
                if wait:
                    return _rate_limited(wait)
            return None
        principal = await rt.auth.authenticate(HTTPConnection(scope))
        if principal is None:
            wait = rt.limiter.hit("addr:" + client_address(scope))
            if wait:
                return _rate_limited(wait)
            return fail("UNAUTHORIZED", "missing or invalid API key", 401)
        state["principal"] = principal
        wait = rt.limiter.hit(principal.rate_key)
        if wait:
            return _rate_limited(wait)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > MAX_BODY
                except ValueError:
                    return fail("INVALID_REQUEST", "bad Content-Length", 400)
                if too_big:
                    return fail("PAYLOAD_TOO_LARGE", "request body is over 1 MiB", 413)
        return None

    @staticmethod
    def _limit_body(receive: Receive) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    raise ApiError("PAYLOAD_TOO_LARGE", "request body is over 1 MiB")
            return message

        return limited


def _rate_limited(wait: float) -> ASGIApp:
    return fail("RATE_LIMITED", "too many requests", 429, {"Retry-After": str(int(wait))})

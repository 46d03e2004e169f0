"""The gate every request passes (pure ASGI, the one middleware of ours):
the request id (§2: kept from a well-formed ``X-Request-ID`` or made, echoed as
a header, on every log line); then auth → rate limit → body size, in the
contract's order; one access-log line and the HTTP metrics; and the last line
of defence that turns any escaped exception into ``INTERNAL_ERROR`` without a
stack trace in the body.

One layer instead of one per concern: every layer costs each request a
coroutine and a ``send`` wrapper. With ``CORS_ORIGINS`` set, Starlette's CORS
middleware sits just inside the gate: preflights pass the gate unauthenticated
(browsers send them without credentials) and the gate's own refusals get CORS
headers too, so a browser can read a 401 or 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

import structlog
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import logs
from gateway.api import forwarding
from gateway.api.csrf import (
    SAFE_METHODS,
    cross_site_refusal,
    is_json_or_absent,
    is_json_type,
    same_origin,
    unsupported_media_type,
)
from gateway.api.envelope import fail, new_request_id, valid_request_id
from gateway.api.errors import ApiError
from gateway.api.media_bodies import any_content_type, body_limit, carries_media, is_signed_media_link
from gateway.cluster.forward import FORWARDED
from gateway.logs import request_id_var
from gateway.runtime import SCOPE_KEY, Runtime

log = structlog.get_logger("gateway.http")

MAX_BODY = 1024 * 1024
CLIENT_CLOSED = 499  # in metrics and the access log: the client went away before the answer (nginx's code)
PUBLIC_EXACT = frozenset(
    {"/health", "/health/live", "/health/ready", "/docs", "/openapi.json", "/", "/console", "/favicon.ico"}
)
PUBLIC_PREFIX = ("/static/", "/docs/")
OPEN_AUTH = frozenset({"/auth/login", "/auth/signup"})  # they authenticate themselves
# Never counted against a rate limit: health probes, and the pages' own files — one page load fetches a few
# dozen ES modules and stylesheets, which would otherwise spend an address's budget (and lock a whole office
# behind one NAT address out of the console) without guarding anything: they are public and static.
UNLIMITED_PREFIX = ("/health", "/static/")


def trusted_hosts(entries: tuple[str, ...]) -> list[str]:
    """TRUSTED_PROXIES for uvicorn's ProxyHeadersMiddleware: addresses, and networks written loosely
    (``10.0.0.1/8`` means ``10.0.0.0/8``, as it always has here; uvicorn wants the strict form)."""
    out: list[str] = []
    for entry in entries:
        if "/" in entry:
            with contextlib.suppress(ValueError):
                entry = str(ipaddress.ip_network(entry, strict=False))
        out.append(entry)
    return out


def is_public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIX)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _assign_request_id(scope: Scope) -> str:
    rid = request_id(scope)
    scope.setdefault("state", {})["request_id"] = rid
    return rid


def request_id(scope: Scope) -> str:
    """A well-formed incoming ``X-Request-ID``, else a fresh UUID4."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            return incoming if valid_request_id(incoming) else new_request_id()
    return new_request_id()


class GuardMiddleware:
    def __init__(
        self, app: ASGIApp, get_runtime: Callable[[], Runtime | None], cors: dict[str, Any] | None = None
    ) -> None:
        self.cors = cors
        self.app = CORSMiddleware(app, **cors) if cors else app
        self.get_runtime = get_runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":  # the WebSocket route authenticates itself (§5)
                token = request_id_var.set(_assign_request_id(scope))
                try:
                    await self.app(scope, receive, send)
                except asyncio.CancelledError as exc:
                    if not _shutdown_cancel(exc):
                        raise
                finally:
                    request_id_var.reset(token)
            else:
                await self.app(scope, receive, send)
            return
        rid = _assign_request_id(scope)
        token = request_id_var.set(rid)  # logs.add_request_id puts it on every line
        raw_rid = rid.encode()
        started = time.perf_counter()
        status = 500
        started_response = False

        async def send_tracking(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                # No route sets X-Request-ID itself: appending is enough.
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", raw_rid)]
            await send(message)

        try:
            rejection, sized = await self._check(scope)
            if rejection is not None:
                if self.cors:
                    rejection = CORSMiddleware(rejection, **self.cors)
                await rejection(scope, receive, send_tracking)
            else:
                # A declared Content-Length within the limit is all the server will read;
                # only a body without one (chunked) is counted as it arrives.
                inner = receive if sized else self._limit_body(receive, scope)
                rt = scope.get(SCOPE_KEY)
                if rt is not None and rt.forwarder is not None:  # a cluster: the device may live elsewhere
                    await forwarding.dispatch(rt, scope, inner, send_tracking, self.app)
                else:
                    await self.app(scope, inner, send_tracking)
        except ClientDisconnect:
            status = CLIENT_CLOSED  # nobody left to answer; not an error of ours
        except asyncio.CancelledError as exc:
            # uvicorn cancels what is still running when the graceful shutdown times out (a client
            # trickling its body, say). Answer it, and end the task quietly: re-raised, the
            # cancellation would be logged by uvicorn as an application error with a traceback.
            if not _shutdown_cancel(exc):
                raise
            status = 503
            if not started_response:
                with contextlib.suppress(Exception):
                    await fail("SHUTTING_DOWN", "the gateway is shutting down", 503)(scope, receive, send_tracking)
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
            if rt is not None:
                rt.metrics.observe_http(scope["method"], template, status, duration)
            if logs.enabled(logging.INFO):
                log.info(
                    "http.request",
                    method=scope["method"],
                    route=template,
                    status=status,
                    duration_ms=round(duration * 1000, 2),
                    token=(scope.get("path_params") or {}).get("token"),
                )
            request_id_var.reset(token)

    async def _check(self, scope: Scope) -> tuple[ASGIApp | None, bool]:
        """(the refusal, if any; whether the body's declared length was checked and is within the limit)."""
        rt = self.get_runtime()
        path: str = scope["path"]
        state = scope.setdefault("state", {})
        if rt is None:
            return None, False
        scope[SCOPE_KEY] = rt
        if self.cors and scope["method"] == "OPTIONS" and _is_preflight(scope):
            return None, False  # answered by the CORS middleware; browsers send no credentials on a preflight
        limited = not path.startswith(UNLIMITED_PREFIX)
        if is_public(path) or path in OPEN_AUTH or path == "/ws" or is_signed_media_link(scope):
            if path in OPEN_AUTH:
                principal = await rt.auth.authenticate(HTTPConnection(scope))
                state["principal"] = principal
            if limited and path != "/ws":
                wait = rt.limiter.hit("addr:" + client_address(scope))
                if wait:
                    return _rate_limited(wait), False
            if path in OPEN_AUTH and not is_json_or_absent(scope):
                return unsupported_media_type(), False
            return None, False
        principal = await rt.auth.authenticate(HTTPConnection(scope))
        if principal is None:
            wait = rt.limiter.hit("addr:" + client_address(scope))
            if wait:
                return _rate_limited(wait), False
            return fail("UNAUTHORIZED", "missing or invalid API key", 401), False
        state["principal"] = principal
        # A call forwarded by another node was counted there.
        wait = rt.limiter.hit(principal.rate_key) if not scope.get(FORWARDED) else 0.0
        if wait:
            return _rate_limited(wait), False
        unsafe = scope["method"] not in SAFE_METHODS
        if unsafe and principal.via == "cookie" and not same_origin(scope, rt.settings.cors_origins):
            return cross_site_refusal(), False
        length = content_type = None
        for name, value in scope["headers"]:  # one pass over the raw headers for both
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
        if length is not None:
            try:
                too_big = int(length) > body_limit(scope, rt.settings, MAX_BODY)
            except ValueError:
                return fail("INVALID_REQUEST", "bad Content-Length", 400), False
            if too_big:
                return _too_large(scope), False
        if (
            unsafe
            and content_type is not None
            and not is_json_type(content_type)
            and not any_content_type(scope, content_type)
        ):
            return unsupported_media_type(), False
        return None, length is not None

    def _limit_body(self, receive: Receive, scope: Scope) -> Receive:
        seen = 0
        rt = self.get_runtime()
        limit = body_limit(scope, rt.settings, MAX_BODY) if rt is not None else MAX_BODY

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if carries_media(scope):
                        raise ApiError("MEDIA_TOO_LARGE", "request body is over MEDIA_MAX_BYTES")
                    raise ApiError("PAYLOAD_TOO_LARGE", "request body is over 1 MiB")
            return message

        return limited


def _shutdown_cancel(exc: asyncio.CancelledError) -> bool:
    """Whether this is uvicorn's cancellation at the end of a graceful shutdown (its message says so)."""
    return bool(exc.args) and "graceful shutdown" in str(exc.args[0])


def _too_large(scope: Scope) -> ASGIApp:
    if carries_media(scope):
        return fail("MEDIA_TOO_LARGE", "request body is over MEDIA_MAX_BYTES", 413)
    return fail("PAYLOAD_TOO_LARGE", "request body is over 1 MiB", 413)


def _is_preflight(scope: Scope) -> bool:
    return any(name == b"access-control-request-method" for name, _ in scope["headers"])


def _rate_limited(wait: float) -> ASGIApp:
    return fail("RATE_LIMITED", "too many requests", 429, {"Retry-After": str(int(wait))})

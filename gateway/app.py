"""``create_app(settings)`` → the Starlette app. The lifespan owns every
long-lived object (registry, hub, device manager, dispatcher) and tears them
down in stages at shutdown: stop intake, close devices quietly, flush, close
the registry."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway import accounts, metrics, phones, webhooks
from gateway.api.envelope import error_response, fail
from gateway.api.errors import ApiError
from gateway.api.gate import GuardMiddleware, trusted_hosts
from gateway.api.routes import auth as auth_routes
from gateway.api.routes import (
    contacts,
    devices,
    docs,
    health,
    media,
    messages,
    pages,
    sandbox,
    validate,
    ws,
)
from gateway.api.routes import metrics as metrics_routes
from gateway.api.routes import webhooks as webhook_routes
from gateway.auth import Authenticator
from gateway.devices import DeviceManager
from gateway.drivers import make_driver
from gateway.drivers.base import DriverOptions
from gateway.events import Hub
from gateway.media import hooks as media_hooks
from gateway.ratelimit import RateLimiter
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.store import Store
from gateway.webhooks.routing import WebhookRouter

log = structlog.get_logger("gateway.app")

Hook = Callable[[Runtime], Awaitable[None]]
SERVICES = (accounts, metrics, phones, webhooks, media_hooks)  # modules with ``start(rt)`` / ``stop(rt)``


def route_table(settings: Settings) -> list[BaseRoute]:
    # Starlette tries routes in order: the busiest (sending, health probes) go first.
    table: list[BaseRoute] = [
        *messages.routes,
        *health.routes,
        *devices.routes,
        *media.routes,
        *validate.routes,
        *contacts.routes,
        *webhook_routes.routes,
        *auth_routes.routes,
        *metrics_routes.routes,
        *docs.routes,
        *ws.routes,
    ]
    if settings.wa_driver == "sandbox":
        table.extend(sandbox.routes)
    table.extend(pages.routes)
    return table


async def build_runtime(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.data_dir)
    hub = Hub()
    router = WebhookRouter(settings)
    options = DriverOptions(
        data_dir=settings.data_dir,
        sandbox_qr_interval_ms=settings.sandbox_qr_interval_ms,
        sandbox_receipt_delay_ms=settings.sandbox_receipt_delay_ms,
        sandbox_reconnect_ms=settings.sandbox_reconnect_ms,
        extra={
            "neonize_proxy": settings.neonize_proxy,
            "neonize_connect_timeout_s": settings.neonize_connect_timeout_s,
        },
    )
    if settings.wa_driver == "neonize":
        # Loading neonize's Go runtime takes a second or more: do it now, off the
        # loop, rather than inside the first POST /devices.
        await asyncio.to_thread(importlib.import_module, "gateway.drivers.neonize")
    manager = DeviceManager(settings, store, hub, router, lambda token: make_driver(settings.wa_driver, token, options))
    return Runtime(
        settings=settings,
        store=store,
        hub=hub,
        devices=manager,
        auth=Authenticator(settings.api_key),
        limiter=RateLimiter(settings.rate_limit_per_minute),
        services={"router": router},
    )


def create_app(settings: Settings) -> Starlette:
    settings = settings.with_api_key()
    holder: dict[str, Runtime] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt = await build_runtime(settings)
        app.state.runtime = rt
        holder["rt"] = rt
        for start in _hooks("start"):
            await start(rt)
        await rt.devices.start()
        try:
            yield
        finally:
            await rt.devices.stop()
            for stop in reversed(_hooks("stop")):
                with contextlib.suppress(Exception):
                    await stop(rt)
            await rt.store.close()
            holder.pop("rt", None)
            log.info("gateway.stopped")

    cors = (
        {
            "allow_origins": list(settings.cors_origins),
            "allow_methods": ["*"],
            "allow_headers": ["*"],
            "expose_headers": ["X-Request-ID", "Retry-After", "Idempotent-Replayed"],
        }
        if settings.cors_origins
        else None
    )
    middleware = [
        # X-Forwarded-For/-Proto, believed from TRUSTED_PROXIES only: the one place they are read.
        Middleware(ProxyHeadersMiddleware, trusted_hosts=trusted_hosts(settings.trusted_proxies)),
        Middleware(GuardMiddleware, get_runtime=lambda: holder.get("rt"), cors=cors),
    ]
    app = Starlette(
        routes=route_table(settings),
        middleware=middleware,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},  # type: ignore[dict-item]
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app


def _hooks(kind: str) -> list[Hook]:
    """``start``/``stop`` coroutines of the services, in start order: accounts (the auth
    resolver) before metrics, the phone cache and the webhook dispatcher."""
    return [hook for module in SERVICES if (hook := getattr(module, kind, None)) is not None]


async def _api_error(request: Request, exc: ApiError) -> Response:
    return error_response(exc)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return fail("NOT_FOUND", "no such route", 404)
    if exc.status_code == 405:
        return fail("METHOD_NOT_ALLOWED", "method not allowed on this route", 405, dict(exc.headers or {}))
    if exc.status_code == 400:
        return fail("INVALID_REQUEST", str(exc.detail), 400)
    return fail("INTERNAL_ERROR", "internal error", 500)

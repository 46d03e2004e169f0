"""``create_app(settings)`` → the Starlette app. The lifespan owns every
long-lived object (registry, hub, device manager, dispatcher) and tears them
down in stages at shutdown: stop intake, close devices quietly, flush, close
the registry."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway.auth import Authenticator
from gateway.devices import DeviceManager
from gateway.drivers import make_driver
from gateway.drivers.base import DriverOptions
from gateway.envelope import RequestIdMiddleware, error_response, fail
from gateway.errors import ApiError
from gateway.events import Hub
from gateway.guard import GuardMiddleware
from gateway.ratelimit import RateLimiter
from gateway.routes import devices, health, pages, sandbox, ws
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.store import Store
from gateway.webhooks import WebhookRouter

log = structlog.get_logger("gateway.app")

# Optional parts plug in here as (routes, start, stop) hooks; see ``extensions``.
Hook = Callable[[Runtime], Any]


def route_table(settings: Settings) -> list[BaseRoute]:
    table: list[BaseRoute] = [*health.routes, *devices.routes, *ws.routes]
    for module in _optional_route_modules():
        table.extend(module.routes)
    if settings.wa_driver == "sandbox":
        table.extend(sandbox.routes)
    table.extend(pages.routes)
    return table


def _optional_route_modules() -> list[Any]:
    """Route modules of capabilities that may not exist yet in every build."""
    import importlib

    found = []
    for name in ("messages", "validate", "contacts", "webhooks", "auth", "metrics", "docs"):
        try:
            found.append(importlib.import_module(f"gateway.routes.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"gateway.routes.{name}":
                raise
    return found


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
    manager = DeviceManager(
        settings, store, hub, router, lambda token: make_driver(settings.wa_driver, token, options)
    )
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
        log.info(
            "gateway.started",
            host=settings.host,
            port=settings.port,
            driver=settings.wa_driver,
            api_key_file=str(settings.api_key_file) if settings.api_key_file else None,
        )
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

    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(GuardMiddleware, get_runtime=lambda: holder.get("rt")),
    ]
    if settings.cors_origins:
        middleware.insert(
            1,
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=["X-Request-ID", "Retry-After", "Idempotent-Replayed"],
            ),
        )
    app = Starlette(
        routes=route_table(settings),
        middleware=middleware,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},  # type: ignore[dict-item]
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app


def _hooks(kind: str) -> list[Any]:
    """``start``/``stop`` coroutines of optional services (webhook dispatcher, metrics, accounts)."""
    import importlib

    hooks = []
    for name in ("gateway.accounts", "gateway.metrics", "gateway.phones", "gateway.webhooks"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        hook = getattr(module, kind, None)
        if hook is not None:
            hooks.append(hook)
    return hooks


async def _api_error(request: Request, exc: ApiError) -> Response:
    return error_response(exc)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return fail("NOT_FOUND", "no such route", 404)
    if exc.status_code == 405:
        return fail("METHOD_NOT_ALLOWED", "method not allowed on this route", 405, exc.headers)
    if exc.status_code == 400:
        return fail("INVALID_REQUEST", str(exc.detail), 400)
    return fail("INTERNAL_ERROR", "internal error", 500)

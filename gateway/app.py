"""The composition root: ``create_app(settings)`` → the Starlette app.

:func:`build_runtime` is the one place that knows how the gateway is put
together: it builds every long-lived object, hands each its collaborators
through its constructor, and starts them on an :class:`~contextlib.AsyncExitStack`
so they stop in the reverse order at shutdown: devices closed quietly (their
send counters flushed), then the dispatcher finishes or hands back its
attempts, then the outbound HTTP client and the store close. Nothing imports this module but the entry
point (an import-linter contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway import collector
from gateway.accounts import Accounts
from gateway.api.envelope import error_response, fail
from gateway.api.errors import ApiError
from gateway.api.forwarding import run_forwarded
from gateway.api.gate import GuardMiddleware, trusted_hosts
from gateway.api.routes import auth as auth_routes
from gateway.api.routes import (
    campaigns,
    contacts,
    devices,
    docs,
    groups,
    health,
    history,
    media,
    messages,
    pages,
    sandbox,
    validate,
    ws,
)
from gateway.api.routes import metrics as metrics_routes
from gateway.api.routes import webhooks as webhook_routes
from gateway.auth import Authenticator, Revocations
from gateway.campaigns import Campaigns
from gateway.campaigns.clock import ScaledClock
from gateway.cluster.bus import Bus
from gateway.cluster.events import EventRelay
from gateway.cluster.forward import Forwarder
from gateway.cluster.invalidate import Invalidations
from gateway.cluster.ownership import Ownership
from gateway.cluster.ratelimits import SharedLimits
from gateway.contacts import Contacts
from gateway.devices import DeviceManager
from gateway.devices.sessions import StoreSessions, upgrade_shared_sessions
from gateway.drivers import make_driver
from gateway.drivers.base import DriverOptions
from gateway.drivers.sandbox_log import MAX_KEPT as SANDBOX_SENT_KEPT
from gateway.events import Hub
from gateway.idempotency import IdempotencyKeys
from gateway.media.service import MediaService
from gateway.messages.retention import MessageRetention
from gateway.messages.service import MessageService
from gateway.metrics import Metrics
from gateway.net import GuardedClient
from gateway.phones import PhoneCache
from gateway.ratelimit import RateLimiter
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.store import Store
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.keys import SigningKeys
from gateway.webhooks.routing import AccountTarget, WebhookRouter

if TYPE_CHECKING:
    from gateway.store.sandbox_world import SandboxWorldStore

log = structlog.get_logger("gateway.app")


def route_table(settings: Settings) -> list[BaseRoute]:
    # Starlette tries routes in order: the busiest (sending, health probes) go first.
    table: list[BaseRoute] = [
        *messages.routes,
        *health.routes,
        *devices.routes,
        *history.routes,
        *groups.routes,
        *media.routes,
        *validate.routes,
        *contacts.routes,
        *campaigns.routes,
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


async def build_runtime(settings: Settings, stack: contextlib.AsyncExitStack) -> Runtime:
    """Build and start the gateway's objects; ``stack`` stops them, in the reverse order, when it closes.

    Construction follows the arrows of the design, so each object gets what it
    needs in its constructor: store → router → dispatcher → devices (which wake
    the dispatcher) → accounts (which remove an account's devices). The router
    reads each account's webhook from a table the accounts service keeps
    (``account_targets``), which breaks what would otherwise be a circle
    (router → accounts → devices → router).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.data_dir, settings.database_url)
    stack.push_async_callback(store.close)
    # The one outbound HTTP client (webhooks, media URLs): closed after everything that uses it has stopped.
    http = GuardedClient(limit=settings.webhook_concurrency + 64)
    stack.push_async_callback(_logged, "http client", http.close)
    hub = Hub()
    bus: Bus | None = None
    ownership: Ownership | None = None
    forwarder: Forwarder | None = None
    if settings.cluster:  # one node of many (CONTRACT §14): the bus first, then the leases' fence on the store
        bus = await _start_bus(settings, store, hub, stack)
        forwarder = Forwarder(bus, forward_timeout_s(settings))
        ownership = Ownership(store, settings.node_id, settings.lease_ttl_s)
        store.fences = ownership.leases.fences
    account_targets: dict[int, AccountTarget] = {}
    router = WebhookRouter(settings, account_target=account_targets.get)
    keys = SigningKeys(settings.webhook_secret)  # who signs what: the accounts service keeps it current
    # In a cluster every node delivers the shared outbox, each row claimed by one node at a time.
    dispatcher = Dispatcher(
        settings, store, http=http, keys=keys, claim_as=settings.node_id if ownership is not None else None
    )
    media = MediaService(settings, store, http=http)
    if settings.wa_driver == "neonize":
        # Loading neonize's Go runtime takes a second or more: do it now, off the
        # loop, rather than inside the first POST /devices.
        await asyncio.to_thread(importlib.import_module, "gateway.drivers.neonize")
    world: SandboxWorldStore | None = None
    if ownership is not None and settings.wa_driver == "sandbox" and settings.database_url:
        # The simulated WhatsApp every node shares: pairing moves with the device, double connections show.
        from gateway.store.sandbox_world import SandboxWorldStore  # asyncpg: loaded by a cluster only

        world = SandboxWorldStore(settings.database_url, settings.node_id, sent_kept=SANDBOX_SENT_KEPT)
        await world.start()
        stack.push_async_callback(_logged, "sandbox world", world.stop)
    options = _driver_options(settings, world)
    if settings.wa_driver == "neonize" and settings.database_url:
        # Every device's whatsmeow session in the shared database, its schema upgraded once, now.
        from gateway.drivers.neonize.sessions import session_dsn, upgrade_schema

        dsn = session_dsn(settings.database_url, await store.server_version(), f"whatsmeow {settings.node_id}".strip())
        await upgrade_shared_sessions(store, functools.partial(upgrade_schema, dsn))
        options.session_db, options.sessions = dsn, StoreSessions(store)
    devices = DeviceManager(
        settings,
        store,
        hub,
        router,
        lambda token, jid: make_driver(settings.wa_driver, token, options, jid),
        wake_dispatcher=dispatcher.wake,
        media=media,
        placement=ownership,
        before_adopt=world.refresh if world is not None else None,
    )
    if ownership is not None:
        ownership.listen(devices)
        ownership.pinned = lambda token: (d := devices.get(token)) is not None and d.status == "pairing"
        if forwarder is not None:  # after the devices: a device is up before its calls come, stops after them
            ownership.listen(forwarder)
    keys.bind_devices(lambda token: d.row.webhook_secret if (d := devices.get(token)) is not None else None)
    revocations = Revocations()  # shared: accounts revoke, the authenticator and WebSockets watch
    accounts = Accounts(
        store, devices, account_targets, revocations, max_devices=settings.account_max_devices, keys=keys
    )
    phone_cache = PhoneCache(settings.phone_cache_ttl_s, settings.phone_cache_size)
    bulk = Campaigns(
        store,
        devices,
        hub,
        router,
        media,
        phone_cache,
        ScaledClock(settings.campaign_clock_scale),
        wake_dispatcher=dispatcher.wake,
    )
    invalidations = Invalidations(bus, store, accounts, devices, phone_cache, keys, bulk) if bus is not None else None
    rt = Runtime(
        settings=settings,
        store=store,
        http=http,
        hub=hub,
        router=router,
        dispatcher=dispatcher,
        devices=devices,
        accounts=accounts,
        contacts=Contacts(store, devices),
        auth=Authenticator(settings.api_key, resolver=accounts.resolve, revocations=revocations),
        # In a cluster the nodes' minutes must be the same minutes: wall-clock windows (NTP-synced hosts).
        limiter=RateLimiter(settings.rate_limit_per_minute, clock=time.time if bus is not None else time.monotonic),
        idempotency=IdempotencyKeys(store),
        media=media,
        messages=MessageService(store, sign=media.signed_url),
        phone_cache=phone_cache,
        metrics=Metrics(devices, store, hub, dispatcher, node=settings.node_id if settings.cluster else None),
        campaigns=bulk,
        started_at=time.monotonic(),
        ownership=ownership,
        bus=bus,
        invalidations=invalidations,
        forwarder=forwarder,
    )
    # Started in dependency order; each stop is pushed once its start has succeeded.
    await accounts.load()
    if invalidations is not None:
        await invalidations.start()
        stack.push_async_callback(_logged, "invalidations", invalidations.stop)
    if bus is not None and settings.rate_limit_per_minute > 0:
        shared = SharedLimits(bus, rt.limiter)
        await shared.start()
        stack.push_async_callback(_logged, "shared rate limits", shared.stop)
    await store.classify_deliveries(settings.webhook_url)  # rows from before targets were recorded
    await dispatcher.start()
    stack.push_async_callback(_logged, "dispatcher", dispatcher.stop)
    await media.start()
    stack.push_async_callback(_logged, "media", media.stop)
    if settings.message_retention_days > 0:
        retention = MessageRetention(store, settings.message_retention_days)
        retention.start()
        stack.push_async_callback(_logged, "message retention", retention.stop)
    await devices.start()
    stack.push_async_callback(_logged, "devices", devices.stop)
    if ownership is not None:  # joins: takes its share of the devices; at stop hands them over, before devices stop
        await ownership.start()
        stack.push_async_callback(_logged, "ownership", ownership.stop)
    # After the devices (its workers send through them), stopped before them: in-flight sends finish first.
    await bulk.start()
    stack.push_async_callback(_logged, "campaigns", bulk.stop)
    if ownership is not None:  # told after the devices of an acquisition, before them of a release
        ownership.listen(bulk)
    return rt


async def _start_bus(settings: Settings, store: Store, hub: Hub, stack: contextlib.AsyncExitStack) -> Bus:
    """The bus and the event relay, before the devices (their first events cross it) and stopped after
    them. Start-up does not wait for NATS: ``/health/ready`` does. The nodes of one database are one
    cluster: its identity names their subjects, so clusters sharing a NATS server never mix."""
    assert settings.bus_url is not None
    namespace = hashlib.sha256((await store.identity()).encode()).hexdigest()[:12]
    bus = Bus(settings.bus_url, settings.node_id, namespace)
    await bus.start()
    stack.push_async_callback(_logged, "bus", bus.stop)
    relay = EventRelay(bus, hub)
    await relay.start()
    stack.push_async_callback(_logged, "event relay", relay.stop)
    return bus


def forward_timeout_s(settings: Settings) -> float:
    """How long a node waits for the device's node to answer a forwarded call: as long as the slowest
    call may take there (a connection attempt, a media fetch and its conversion), and at least 30 s."""
    media = settings.media_fetch_timeout_ms / 1000 + settings.media_convert_timeout_s
    return max(30.0, settings.connect_timeout_ms / 1000, media) + 5.0


def _driver_options(settings: Settings, world: SandboxWorldStore | None = None) -> DriverOptions:
    return DriverOptions(
        data_dir=settings.data_dir,
        sandbox_world=world,
        sandbox_qr_interval_ms=settings.sandbox_qr_interval_ms,
        sandbox_receipt_delay_ms=settings.sandbox_receipt_delay_ms,
        sandbox_reconnect_ms=settings.sandbox_reconnect_ms,
        extra={
            "neonize_proxy": settings.neonize_proxy,
            "neonize_connect_timeout_s": settings.neonize_connect_timeout_s,
        },
    )


async def _logged(name: str, stop: Callable[[], Awaitable[None]]) -> None:
    """A failing stop is logged, and the ones after it (down to closing the store) still run."""
    try:
        await stop()
    except Exception:
        log.exception("gateway.stop_failed", part=name)


def create_app(settings: Settings) -> Starlette:
    settings = settings.with_api_key()
    holder: dict[str, Runtime] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with contextlib.AsyncExitStack() as stack:
                rt = await build_runtime(settings, stack)
                app.state.runtime = rt
                if rt.forwarder is not None:  # calls from other nodes run through the whole app
                    rt.forwarder.bind(functools.partial(run_forwarded, app, rt.forwarder.max_body))
                holder["rt"] = rt
                collector.tune_for_serving()
                yield
        finally:
            if holder.pop("rt", None) is not None:
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

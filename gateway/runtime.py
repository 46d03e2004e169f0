"""The long-lived objects of one running gateway, as one frozen, typed record.

Built by the composition root (:func:`gateway.app.build_runtime`), which also
owns their start and stop order; routes reach it through ``runtime(request)``.
Every collaborator is a named, typed field: nothing is looked up by name, and
nothing here is set after construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from gateway.accounts import Accounts
from gateway.auth import Authenticator
from gateway.campaigns import Campaigns
from gateway.cluster.bus import Bus
from gateway.cluster.forward import Forwarder
from gateway.cluster.invalidate import Invalidations
from gateway.cluster.ownership import Ownership
from gateway.contacts import Contacts
from gateway.devices import DeviceManager
from gateway.events import Hub
from gateway.idempotency import IdempotencyKeys
from gateway.media.service import MediaService
from gateway.messages.service import MessageService
from gateway.metrics import Metrics
from gateway.net import GuardedClient
from gateway.phones import PhoneCache
from gateway.ratelimit import RateLimiter
from gateway.settings import Settings
from gateway.store import Store
from gateway.webhooks import Dispatcher, WebhookRouter


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    http: GuardedClient  # outbound HTTP to URLs the gateway is given (webhooks, media URLs)
    hub: Hub  # WebSocket frames to listeners
    router: WebhookRouter  # who gets an event
    dispatcher: Dispatcher  # delivers the webhook outbox
    devices: DeviceManager
    accounts: Accounts
    contacts: Contacts  # what the API reads of the contacts
    auth: Authenticator
    limiter: RateLimiter  # per-key request rate
    idempotency: IdempotencyKeys
    media: MediaService  # stored media: uploads, downloads, signed links
    messages: MessageService  # the message store: history, chats, message actions
    phone_cache: PhoneCache  # on-WhatsApp answers
    metrics: Metrics
    campaigns: Campaigns  # paced bulk sends
    started_at: float  # time.monotonic() at start-up
    ownership: Ownership | None = None  # cluster mode: which node runs which device
    bus: Bus | None = None  # cluster mode: the connection to the other nodes
    invalidations: Invalidations | None = None  # changes other nodes must apply (cluster only)
    forwarder: Forwarder | None = None  # calls for devices on other nodes (cluster only)


SCOPE_KEY = "wa.runtime"  # the gate puts the runtime in the ASGI scope: one lookup per request, not one per use


def runtime(conn: HTTPConnection) -> Runtime:
    rt: Runtime | None = conn.scope.get(SCOPE_KEY)
    if rt is None:
        rt = conn.app.state.runtime
    return rt

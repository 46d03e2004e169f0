"""The long-lived objects of one running gateway, reachable from every route.

Built and torn down by the app's lifespan; routes reach it through
``runtime(request)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from gateway.auth import Authenticator
from gateway.devices import DeviceManager
from gateway.events import Hub
from gateway.ratelimit import RateLimiter
from gateway.settings import Settings
from gateway.store import Store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    hub: Hub
    devices: DeviceManager
    auth: Authenticator
    limiter: RateLimiter
    started_at: float = field(default_factory=time.monotonic)
    services: dict[str, Any] = field(default_factory=dict)  # optional parts: phone cache, dispatcher, metrics…


SCOPE_KEY = "wa.runtime"  # the gate puts the runtime in the ASGI scope: one lookup per request, not one per use


def runtime(conn: HTTPConnection) -> Runtime:
    rt: Runtime | None = conn.scope.get(SCOPE_KEY)
    if rt is None:
        rt = conn.app.state.runtime
    return rt

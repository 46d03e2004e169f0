"""Health probes for orchestrators, and the detailed view for operators."""

from __future__ import annotations

import asyncio
import os
import resource
import threading
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.envelope import fail, ok
from gateway.api.models.responses import DeviceBrief, HealthDetail, Probe
from gateway.api.routes.common import principal
from gateway.runtime import runtime


async def health(request: Request) -> Response:
    return ok(None, "ok")


async def live(request: Request) -> Response:
    return ok(Probe(status="live"), "ok")


async def ready(request: Request) -> Response:
    rt = runtime(request)
    if rt.devices.started and await rt.store.writable():
        return ok(Probe(status="ready"), "ok")
    return fail("NOT_READY", "not ready yet", 503)


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def detailed(request: Request) -> Response:
    rt = runtime(request)
    p = principal(request)
    devices = rt.devices.visible(p.account_id, p.is_admin)
    data = HealthDetail(
        uptime=round(time.monotonic() - rt.started_at, 3),
        tasks=len(asyncio.all_tasks()),
        threads=threading.active_count(),
        memory_rss=rss_bytes(),
        driver=rt.settings.wa_driver,
        device_count=len(devices),
        devices=[DeviceBrief(token=d.token, status=d.status) for d in devices],
    )
    return ok(data, "ok")


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/health/live", live, methods=["GET"]),
    Route("/health/ready", ready, methods=["GET"]),
    Route("/health/detailed", detailed, methods=["GET"]),
]

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
from gateway.api.models.responses import DeviceBrief, HealthDetail, NodeBrief, Probe
from gateway.api.routes.common import principal
from gateway.runtime import runtime


async def health(request: Request) -> Response:
    return ok(None, "ok")


async def live(request: Request) -> Response:
    return ok(Probe(status="live"), "ok")


async def ready(request: Request) -> Response:
    rt = runtime(request)
    # A cluster's node is ready once it has joined: bus connected, lease loop running (store migrated: it opened).
    joined = rt.ownership is None or (rt.ownership.joined and rt.bus is not None and rt.bus.connected)
    if rt.devices.started and joined and await rt.store.writable():
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
    if rt.ownership is not None:  # every live node and the devices it runs (the caller's devices only)
        nodes = [
            NodeBrief(id=node, devices=[t for t in tokens if p.can_see(rt.ownership.account_of(t)[1])])
            for node, tokens in rt.ownership.nodes()
        ]
    else:
        nodes = [NodeBrief(id=rt.settings.node_id, devices=sorted(d.token for d in devices))]
    data = HealthDetail(
        uptime=round(time.monotonic() - rt.started_at, 3),
        tasks=len(asyncio.all_tasks()),
        threads=threading.active_count(),
        memory_rss=rss_bytes(),
        driver=rt.settings.wa_driver,
        device_count=len(devices),
        devices=[DeviceBrief(token=d.token, status=d.status) for d in devices],
        node=rt.settings.node_id,
        nodes=nodes,
    )
    return ok(data, "ok")


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/health/live", live, methods=["GET"]),
    Route("/health/ready", ready, methods=["GET"]),
    Route("/health/detailed", detailed, methods=["GET"]),
]

"""Webhook deliveries over HTTP: list the outbox, show one, retry a dead letter.

An account sees only deliveries of its own devices to its own targets (never the
operator's ``WEBHOOK_URL``); any other delivery answers NOT_FOUND, like one that
does not exist. The admin sees all, URLs redacted (:mod:`gateway.webhooks.views`).
"""

from __future__ import annotations

import time
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.api.envelope import ok
from gateway.api.errors import ApiError, invalid
from gateway.api.models.responses import Delivery, DeliveryList, of
from gateway.api.routes.common import principal, query_int, token_from
from gateway.runtime import runtime
from gateway.store.outbox import OutboxRow
from gateway.webhooks.views import delivery_view, visible_to

STATUSES = ("pending", "delivered", "failed")
MAX_ID = 2**63 - 1  # SQLite's INTEGER range


async def list_deliveries(request: Request) -> Response:
    """``GET /webhooks/deliveries?status=&token=&limit=``, newest first."""
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise invalid("'status' must be pending, delivered or failed")
    raw_token = request.query_params.get("token")
    token = token_from(raw_token, request) if raw_token else None
    limit = query_int(request, "limit", 100, 1, 1000)
    p = principal(request)
    if not p.is_admin and p.account_id is None:
        return ok(DeliveryList(deliveries=[]), "Deliveries retrieved")
    rows = await runtime(request).store.list_deliveries(
        owner_id=None if p.is_admin else p.account_id, status=status, token=token, limit=limit
    )
    views = [of(Delivery, delivery_view(r, redact=p.is_admin)) for r in rows]
    return ok(DeliveryList(deliveries=views), "Deliveries retrieved")


async def _visible_delivery(request: Request) -> OutboxRow:
    """The delivery named by the path, if the caller may see it; else NOT_FOUND (as for no such id)."""
    raw = request.path_params["id"]
    if not raw.isascii() or not raw.isdigit():
        raise invalid("delivery id must be a whole number")
    delivery_id = int(raw)
    row = await runtime(request).store.get_delivery(delivery_id) if delivery_id <= MAX_ID else None
    p = principal(request)
    if row is None or not visible_to(row, p.account_id, p.is_admin):
        raise ApiError("NOT_FOUND", f"no delivery {delivery_id}")
    return row


async def get_delivery(request: Request) -> Response:
    """``GET /webhooks/deliveries/{id}``: one delivery."""
    row = await _visible_delivery(request)
    return ok(of(Delivery, delivery_view(row, redact=principal(request).is_admin)), "Delivery retrieved")


async def retry_delivery(request: Request) -> Response:
    """``POST /webhooks/deliveries/{id}/retry``: a ``failed`` delivery goes back in the queue, attempts 0."""
    row = await _visible_delivery(request)
    delivery_id = row.id
    rt = runtime(request)
    now = time.time()
    if row.status != "failed" or not await rt.store.requeue_failed(delivery_id, now):
        raise invalid(f"only a failed delivery can be retried; delivery {delivery_id} is {row.status}")
    rt.dispatcher.requeue(row, now)
    queued = replace(row, status="pending", attempts=0, next_attempt_at=now)
    return ok(of(Delivery, delivery_view(queued, redact=principal(request).is_admin)), "Delivery queued for retry")


routes: list[BaseRoute] = [
    Route("/webhooks/deliveries", list_deliveries, methods=["GET"]),
    Route("/webhooks/deliveries/{id}", get_delivery, methods=["GET"]),
    Route("/webhooks/deliveries/{id}/retry", retry_delivery, methods=["POST"]),
]

"""Campaigns (CONTRACT §13): create, list, read, pause/resume/cancel, and the recipients (JSON or CSV)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.api import campaign_bodies
from gateway.api.envelope import ok
from gateway.api.errors import invalid
from gateway.api.models.campaigns import CampaignCreate
from gateway.api.models.decode import read
from gateway.api.routes.common import principal, query_int
from gateway.campaigns import Campaigns
from gateway.campaigns.csv import recipients_csv
from gateway.campaigns.model import RECIPIENT_STATUSES
from gateway.runtime import runtime
from gateway.store.campaigns import CampaignRow
from gateway.timestamps import iso_ts_or_none


def service(request: Request) -> Campaigns:
    return runtime(request).campaigns


async def _mine(request: Request) -> CampaignRow:
    p = principal(request)
    return await service(request).get(request.path_params["id"], p.account_id, p.is_admin)


async def create(request: Request) -> Response:
    body = await read(request, CampaignCreate)
    new = await campaign_bodies.parse(request, body)
    people = await campaign_bodies.recipients_of(request, body, new.token)
    data = await service(request).create(
        owner_id=new.owner_id,
        token=new.token,
        name=new.name,
        content=new.content,
        recipients=people,
        pace=new.pace,
        validate=new.validate,
        start_at=new.start_at,
    )
    return ok(data, "campaign created", status=201)


async def listing(request: Request) -> Response:
    limit = query_int(request, "limit", 100, 1, 1000)
    p = principal(request)
    return ok({"campaigns": await service(request).listing(p.account_id, p.is_admin, limit)}, "campaigns")


async def one(request: Request) -> Response:
    return ok(service(request).view(await _mine(request)), "campaign")


async def pause(request: Request) -> Response:
    return ok(await service(request).pause(await _mine(request)), "campaign paused")


async def resume(request: Request) -> Response:
    return ok(await service(request).resume(await _mine(request)), "campaign resumed")


async def cancel(request: Request) -> Response:
    return ok(await service(request).cancel(await _mine(request)), "campaign cancelled")


async def recipients(request: Request) -> Response:
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise invalid("'format' must be json or csv")
    status = request.query_params.get("status") or None
    if status is not None and status not in RECIPIENT_STATUSES:
        raise invalid(f"'status' must be one of {', '.join(RECIPIENT_STATUSES)}")
    limit = query_int(request, "limit", 100, 1, 1000)
    after = query_int(request, "after", 0, 0)
    row = await _mine(request)
    store = runtime(request).store
    if fmt == "csv":
        return StreamingResponse(
            recipients_csv(store.iter_recipient_tuples(row.id, status)),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="campaign-{row.id}.csv"',
                "Cache-Control": "no-store",
            },
        )
    rows = await store.list_recipients(row.id, status, limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    page = [
        {
            "seq": r[0],
            "phone": r[1],
            "name": r[2],
            "status": "pending" if r[3] == "sending" else r[3],
            "reason": r[4],
            "messageId": r[5],
            "sentAt": iso_ts_or_none(r[6]),
            "statusAt": iso_ts_or_none(r[7]),
        }
        for r in rows
    ]
    return ok({"recipients": page, "nextAfter": rows[-1][0] if more else None}, "recipients")


routes = [
    Route("/campaigns", create, methods=["POST"]),
    Route("/campaigns", listing, methods=["GET"]),
    Route("/campaigns/{id}", one, methods=["GET"]),
    Route("/campaigns/{id}/pause", pause, methods=["POST"]),
    Route("/campaigns/{id}/resume", resume, methods=["POST"]),
    Route("/campaigns/{id}/cancel", cancel, methods=["POST"]),
    Route("/campaigns/{id}/recipients", recipients, methods=["GET"]),
]

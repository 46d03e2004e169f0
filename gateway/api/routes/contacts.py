"""``GET /contacts/{token}``: captured contacts as JSON pages or a streamed CSV file."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.api.envelope import ok
from gateway.api.errors import device_not_found, invalid
from gateway.api.routes.common import path_token, principal, query_int
from gateway.csv_export import contacts_csv
from gateway.runtime import runtime

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


async def _check_visible(request: Request, token: str, owner: int | None) -> None:
    """DEVICE_NOT_FOUND unless the caller sees the device or has contacts of it (they outlive it)."""
    rt = runtime(request)
    device = rt.devices.get(token)
    if device is not None and principal(request).can_see(device.row.owner_id):
        return
    if not await rt.store.has_contacts(token, owner):
        raise device_not_found(token)


async def list_contacts(request: Request) -> Response:
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise invalid("'format' must be json or csv")
    every = request.query_params.get("limit") == "all"
    if every and fmt != "csv":
        raise invalid("'limit=all' is for format=csv; JSON pages hold at most 1000 contacts")
    limit = None if every else query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = query_int(request, "offset", 0, 0)
    token = path_token(request)  # query params first: INVALID_REQUEST precedes the phone rules (§2)
    p = principal(request)
    owner = None if p.is_admin else p.account_id  # an account reads only its own rows
    await _check_visible(request, token, owner)
    store = runtime(request).store
    if fmt == "csv":
        return StreamingResponse(
            contacts_csv(store.iter_contact_tuples(token, limit, offset, owner)),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="contacts-{token}.csv"',
                "Cache-Control": "no-store",
            },
        )
    assert limit is not None
    total = await store.count_contacts(token, owner)
    rows = await store.list_contacts(token, limit, offset, owner)
    data = {"contacts": [c.to_api() for c in rows], "total": total, "limit": limit, "offset": offset}
    return ok(data, "contacts")


routes = [Route("/contacts/{token}", list_contacts, methods=["GET"])]

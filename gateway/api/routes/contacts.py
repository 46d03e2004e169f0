"""``GET /contacts/{token}``: captured contacts as JSON pages or a streamed CSV file
(``?format=csv``, or its own operation ``GET /contacts/{token}/export``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.api.envelope import ok
from gateway.api.errors import invalid
from gateway.api.models.responses import Contact, ContactPage, of
from gateway.api.routes.common import path_token, principal, query_int
from gateway.contacts import Contacts
from gateway.runtime import runtime

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def contacts(request: Request) -> Contacts:
    return runtime(request).contacts


async def list_contacts(request: Request) -> Response:
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise invalid("'format' must be json or csv")
    return await _answer(request, fmt)


async def export_contacts(request: Request) -> Response:
    return await _answer(request, "csv")


async def _answer(request: Request, fmt: str) -> Response:
    every = request.query_params.get("limit") == "all"
    if every and fmt != "csv":
        raise invalid("'limit=all' is for format=csv; JSON pages hold at most 1000 contacts")
    limit = None if every else query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = query_int(request, "offset", 0, 0)
    token = path_token(request)  # query params first: INVALID_REQUEST precedes the phone rules (§2)
    caller = principal(request)
    if fmt == "csv":
        return StreamingResponse(
            await contacts(request).export(caller, token, limit, offset),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="contacts-{token}.csv"',
                "Cache-Control": "no-store",
            },
        )
    assert limit is not None
    page = await contacts(request).page(caller, token, limit, offset)
    data = ContactPage(
        contacts=[of(Contact, c.to_api()) for c in page.rows], total=page.total, limit=limit, offset=offset
    )
    return ok(data, "contacts")


routes = [
    Route("/contacts/{token}", list_contacts, methods=["GET"]),
    Route("/contacts/{token}/export", export_contacts, methods=["GET"]),
]

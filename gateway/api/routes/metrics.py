"""``GET /metrics``: Prometheus text format (a key is required, like every non-public route)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.routes.common import require_admin
from gateway.metrics import CONTENT_TYPE
from gateway.runtime import runtime


async def metrics(request: Request) -> Response:
    require_admin(request)  # gateway-wide figures: an operator's view, not a tenant's
    return Response(await runtime(request).metrics.render(), media_type=CONTENT_TYPE)


routes = [Route("/metrics", metrics, methods=["GET"])]

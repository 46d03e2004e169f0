"""``GET /metrics``: Prometheus text format (a key is required, like every non-public route)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.errors import ApiError
from gateway.api.routes.common import require_admin
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.runtime import runtime


async def metrics(request: Request) -> Response:
    require_admin(request)  # gateway-wide figures: an operator's view, not a tenant's
    rt = runtime(request)
    service: Metrics | None = rt.services.get("metrics")
    if service is None:
        raise ApiError("NOT_FOUND", "metrics are not enabled")
    return Response(await service.render(rt), media_type=CONTENT_TYPE)


routes = [Route("/metrics", metrics, methods=["GET"])]

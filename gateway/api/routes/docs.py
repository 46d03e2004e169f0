"""``GET /openapi.json`` and ``GET /docs`` (Swagger UI). Public, like the pages.

Swagger UI's assets come from the ``swagger-ui-py`` package (Swagger UI 5, the
first line that renders OpenAPI 3.1) and are served from ``/docs/static`` — no
CDN, so the docs work on a machine without internet.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.api.openapi import document
from gateway.api.routes.pages import DOCS_HEADERS, WithHeaders
from gateway.runtime import runtime


def swagger_static_dir() -> Path | None:
    """The package's asset folder, found without importing it (its ``__init__`` pulls in Jinja)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static"


# Relative URLs, so the page also works behind a reverse proxy that mounts the gateway under a prefix.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>wa-gateway API</title>
  <link rel="stylesheet" href="docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="docs/static/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui" data-url="openapi.json"></div>
  <script src="docs/static/swagger-ui-bundle.js"></script>
  <script src="docs/static/swagger-ui-standalone-preset.js"></script>
  <script type="module" src="static/js/docs.js"></script>
</body>
</html>
"""


async def openapi_json(request: Request) -> Response:
    app_state = request.app.state
    cached: bytes | None = getattr(app_state, "openapi_bytes", None)
    if cached is None:
        cached = orjson.dumps(document(sandbox=runtime(request).settings.wa_driver == "sandbox"))
        app_state.openapi_bytes = cached
    return Response(cached, media_type="application/json")


async def docs(request: Request) -> Response:
    # Its own CSP (Swagger UI needs inline styles) beside the pages' other security headers.
    return HTMLResponse(PAGE, headers=DOCS_HEADERS)


def _routes() -> list[BaseRoute]:
    table: list[BaseRoute] = [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    static = swagger_static_dir()
    if static is not None:
        assets = WithHeaders(StaticFiles(directory=static, check_dir=False), DOCS_HEADERS)
        table.append(Mount("/docs/static", app=assets, name="docs-static"))
    return table


routes = _routes()

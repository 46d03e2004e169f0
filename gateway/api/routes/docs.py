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
  <style>body { margin: 0; }</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/static/swagger-ui-bundle.js"></script>
  <script src="docs/static/swagger-ui-standalone-preset.js"></script>
  <script>
    window.onload = function () {
      window.ui = SwaggerUIBundle({
        url: "openapi.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        persistAuthorization: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout",
      });
    };
  </script>
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
    return HTMLResponse(PAGE)


def _routes() -> list[BaseRoute]:
    table: list[BaseRoute] = [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    static = swagger_static_dir()
    if static is not None:
        table.append(Mount("/docs/static", app=StaticFiles(directory=static, check_dir=False), name="docs-static"))
    return table


routes = _routes()

"""The browser pages (``/``, ``/console``) and their static assets."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent.parent / "static"


def _page(name: str) -> Response:
    path = STATIC / name
    if not path.is_file():
        return Response(f"<!doctype html><title>wa-gateway</title><p>{name} is missing</p>", media_type="text/html")
    return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})


async def index(request: Request) -> Response:
    return _page("index.html")


async def console(request: Request) -> Response:
    return _page("console.html")


routes = [
    Route("/", index, methods=["GET"]),
    Route("/console", console, methods=["GET"]),
    Mount("/static", app=StaticFiles(directory=STATIC, check_dir=False), name="static"),
]

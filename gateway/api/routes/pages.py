"""The browser pages (``/``, ``/console``), their static assets, and the security headers they carry.

Every page and asset answers with a Content-Security-Policy that allows scripts and styles only from the
gateway itself (the pages are native ES modules under ``/static/js/``, with no inline script, inline
handler or style attribute), so an injected ``<script>`` or ``onerror=`` never runs even if some text
slipped past the DOM helpers. ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` stop another site
from framing the pages (clickjacking the "Log out & delete" button), ``nosniff`` stops a browser from
running a download as script.

``Referrer-Policy: same-origin``: nothing about the gateway (host, port, path) is sent to another site,
as with ``no-referrer``; but same-origin requests keep their ``Origin``/``Referer``, which the
cookie-session CSRF check relies on — the Fetch standard serialises ``Origin`` as ``null`` on a POST made
under ``no-referrer``. The pages link nowhere outside the gateway, so the stricter-sounding policy would
buy nothing.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).resolve().parent.parent.parent / "static"

# 'self' covers the same-origin WebSocket (ws:/wss:) in CSP Level 3 browsers. data: images are the inline
# SVG favicon; blob: is the CSV download link and the preview of a file about to be sent. media-src 'self':
# incoming audio and video play from the gateway's own signed /media links (media-view.js loads them as
# same-origin paths). No font-src: the pages use system fonts.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

# Swagger UI (/docs) applies inline style attributes from its bundle (measured: Chromium reports "Applying
# inline style violates ... style-src 'self'" from swagger-ui-bundle.js), so style-src needs
# 'unsafe-inline' there. Scripts stay 'self' only (the page's start-up code is /static/js/docs.js, not
# inline), so the relaxation cannot run code. Its icons are data: SVGs.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(csp: str) -> dict[str, str]:
    """The headers every browser-facing response of the gateway carries (see the module docstring)."""
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
    }


PAGE_HEADERS = security_headers(PAGE_CSP)
DOCS_HEADERS = security_headers(DOCS_CSP)


class WithHeaders:
    """Wrap an ASGI app (a ``StaticFiles`` mount) so each of its HTTP responses carries ``headers``."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.raw]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _page(name: str) -> Response:
    path = STATIC / name
    if not path.is_file():
        return Response(
            f"<!doctype html><title>wa-gateway</title><p>{name} is missing</p>",
            media_type="text/html",
            headers=PAGE_HEADERS,
        )
    return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache", **PAGE_HEADERS})


async def index(request: Request) -> Response:
    return _page("index.html")


async def console(request: Request) -> Response:
    return _page("console.html")


routes = [
    Route("/", index, methods=["GET"]),
    Route("/console", console, methods=["GET"]),
    # no-cache: the ES modules are many files; revalidating (a 304 with the ETag) keeps them one version.
    Mount(
        "/static",
        app=WithHeaders(StaticFiles(directory=STATIC, check_dir=False), {"Cache-Control": "no-cache", **PAGE_HEADERS}),
        name="static",
    ),
]

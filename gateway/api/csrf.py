"""Cross-site request checks: what stops another site's page from using a logged-in
browser's session cookie.

The session cookie is ``SameSite=Lax``, which still lets a page on another port
of the same host (the same *site*) send it, and lets any page open a WebSocket
with it. So:

- a cookie-authenticated state-changing request (anything but GET/HEAD/OPTIONS)
  and a cookie-authenticated WebSocket upgrade must name, in ``Origin`` (or,
  without one, ``Referer``), the gateway's own origin or one in ``CORS_ORIGINS``;
  otherwise ``403 FORBIDDEN``. Key- and bearer-authenticated calls carry no
  ambient credential and are not checked.
- a state-changing request that declares a body type must declare JSON
  (``application/json`` or ``application/*+json``); otherwise
  ``415 UNSUPPORTED_MEDIA_TYPE``. Forms and ``text/plain`` are what a page can
  send cross-site without a CORS preflight. No ``Content-Type`` at all stays
  accepted (``curl`` without ``-H``, an empty POST).

The gateway's own origin is the request's scheme (``https`` behind a trusted
proxy that says so) and its ``Host`` header.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import Response
from starlette.types import Scope

from gateway.api.envelope import fail

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or URL; None when it is not an http(s) one (``null`` included)."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if scheme not in DEFAULT_PORTS or not host:
            return None
        return scheme, host, parts.port or DEFAULT_PORTS[scheme]
    except ValueError:  # a bad port, a bad IPv6 literal
        return None


def own_origin(scope: Scope) -> tuple[str, str, int] | None:
    host = _header(scope, b"host")
    if not host:
        return None
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    return _origin_of(f"{scheme}://{host}")


def same_origin(scope: Scope, allowed: tuple[str, ...]) -> bool:
    """Whether the request's ``Origin`` (else ``Referer``) is the gateway's own origin or an allowed one."""
    claimed = _header(scope, b"origin")
    if claimed is None:
        claimed = _header(scope, b"referer")
    if not claimed:
        return False
    origin = _origin_of(claimed)
    if origin is None:
        return False
    if origin == own_origin(scope):
        return True
    return any(origin == _origin_of(a) for a in allowed if a != "*")


def is_json_or_absent(scope: Scope) -> bool:
    """No ``Content-Type``, or a JSON one."""
    for key, value in scope["headers"]:
        if key == b"content-type":
            return is_json_type(value)
    return True


def is_json_type(raw: bytes) -> bool:
    """A JSON media type (``application/json``, ``application/*+json``; parameters such as ``charset`` allowed)."""
    if raw == b"application/json":  # what nearly every client sends
        return True
    media = raw.split(b";", 1)[0].strip().lower()
    if media == b"application/json":
        return True
    kind, _, sub = media.partition(b"/")
    return kind == b"application" and sub.endswith(b"+json")


def cross_site_refusal() -> Response:
    return fail(
        "FORBIDDEN",
        "cross-site request refused: a request with the session cookie must come from the gateway's own"
        " origin (or one in CORS_ORIGINS)",
        403,
    )


def unsupported_media_type() -> Response:
    return fail("UNSUPPORTED_MEDIA_TYPE", "the request body must be JSON (Content-Type: application/json)", 415)

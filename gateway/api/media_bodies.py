"""What the gate lets through for the routes that carry media (CONTRACT §11 "Bodies").

Every other request body is capped at 1 MiB. ``POST /media`` takes an upload up to
``MEDIA_MAX_BYTES`` (plus room for multipart headers); ``POST /messages`` (and the
sandbox's ``/incoming``) takes JSON with base64 ``media.data`` (so 4/3 of that, plus the other fields) or a multipart
body. The routes themselves hold the file to exactly ``MEDIA_MAX_BYTES`` while it
streams, and ``POST /messages`` still refuses JSON over 1 MiB that carries no media.
Their bodies may be any Content-Type (a raw upload is its file's type; multipart on
``/messages``), so the JSON-only rule does not apply to them.

``GET /media/{id}?exp=…&sig=…`` is answered without an API key: the signature is the
credential (the route checks it; a bad one is 403).
"""

from __future__ import annotations

from starlette.types import Scope

from gateway.media.service import base64_size_bound
from gateway.settings import Settings

MULTIPART_SLACK = 64 * 1024  # part headers, boundaries and the small text fields beside the file
MEDIA_ROUTES = frozenset({"/media", "/messages"})


def _sandbox_incoming(path: str) -> bool:
    """``/sandbox/devices/{token}/incoming``: the simulated phone sends media as base64 too."""
    return path.startswith("/sandbox/devices/") and path.endswith("/incoming") and path.count("/") == 4


def carries_media(scope: Scope) -> bool:
    return scope["method"] == "POST" and (scope["path"] in MEDIA_ROUTES or _sandbox_incoming(scope["path"]))


def body_limit(scope: Scope, settings: Settings, default: int) -> int:
    """The most bytes of body this request may send."""
    if not carries_media(scope):
        return default
    if scope["path"] == "/media":
        return settings.media_max_bytes + MULTIPART_SLACK
    return base64_size_bound(settings.media_max_bytes) + MULTIPART_SLACK


def any_content_type(scope: Scope, content_type: bytes) -> bool:
    """Bodies that need not be JSON: any upload to ``POST /media`` (raw: the file's own type, or
    multipart), and multipart on ``POST /messages``. Cross-site use of the session cookie is refused
    before this (the gate's origin check), so a foreign page cannot post a form here."""
    if scope["method"] != "POST":
        return False
    if scope["path"] == "/media":
        return True
    return scope["path"] == "/messages" and content_type.split(b";", 1)[0].strip().lower() == b"multipart/form-data"


def is_signed_media_link(scope: Scope) -> bool:
    return (
        scope["method"] in ("GET", "HEAD")
        and scope["path"].startswith("/media/")
        and b"sig=" in scope.get("query_string", b"")
    )

"""Fetch a media URL into a spool: http(s) only, bounded in time and size, every hop guarded.

§11: ``MEDIA_FETCH_TIMEOUT_MS`` for the whole fetch (all hops, the body included),
at most ``MEDIA_MAX_BYTES`` of body (a declared Content-Length over it is refused
before reading; a body that grows past it is cut off), at most 3 redirects, each
hop refused when it points at a loopback, private, link-local or otherwise non-public
address unless ``MEDIA_FETCH_ALLOW_PRIVATE``. The requests go through the gateway's
:class:`~gateway.net.GuardedClient`, which checks each hop's literal address and, for a
name, the very addresses it connects to (inside the connector: no second DNS lookup a
rebinding server could answer differently). Redirects are followed here, one at a time,
each hop a request of its own through the guard.

The body streams into the spool chunk by chunk: a 50 MB fetch never sits in memory. Nothing
is decompressed: an answer with a ``Content-Encoding`` is refused rather than stored encoded.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin, urlsplit

from gateway.media.errors import fetch_failed, invalid_media, too_large
from gateway.media.storage import Spool
from gateway.net import BadResponse, Blocked, ConnectFailed, GuardedClient, NetError
from gateway.net.addresses import has_control_character

MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def check_scheme(url: str) -> None:
    """INVALID_MEDIA unless ``url`` is a well-formed http(s) URL (the caller's mistake, not the network's)."""
    if has_control_character(url):
        raise invalid_media("'media.url' may not contain control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise invalid_media("'media.url' is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 4096:
        raise invalid_media("'media.url' must be an http(s) URL")


async def fetch_into(
    spool: Spool,
    url: str,
    *,
    timeout_s: float,
    allow_private: bool,
    client: GuardedClient,
    max_redirects: int = MAX_REDIRECTS,
) -> str | None:
    """Stream ``url``'s body into ``spool``; returns the server's Content-Type (a hint only)."""
    check_scheme(url)
    try:
        async with asyncio.timeout(timeout_s):
            return await _follow(spool, url, not allow_private, client, max_redirects)
    except TimeoutError as exc:
        raise fetch_failed(f"fetching the media URL timed out after {timeout_s:g} s") from exc


async def _follow(spool: Spool, url: str, guarded: bool, client: GuardedClient, max_redirects: int) -> str | None:
    for hop in range(max_redirects + 1):
        where = "the media URL" if hop == 0 else f"redirect {hop} of the media URL"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or has_control_character(url):
            raise fetch_failed("the media URL redirected to a non-http(s) URL")
        try:
            async with client.get(url, guarded=guarded) as response:
                location = response.headers.get("location")
                if response.status in REDIRECTS and location:
                    url = urljoin(url, location)
                    continue
                if not 200 <= response.status < 300:
                    raise fetch_failed(f"the media URL answered HTTP {response.status}")
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise fetch_failed(f"the media URL answered with Content-Encoding {encoding[:40]!r}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > spool.max_bytes:
                    raise too_large(spool.max_bytes)
                try:
                    async for chunk in response.chunks(1 << 16):
                        spool.write(chunk)
                except BadResponse as exc:
                    raise fetch_failed(f"the media URL's body broke off: {exc}") from exc
                content_type: str | None = response.headers.get("content-type")
                return content_type
        except Blocked as exc:
            raise fetch_failed(
                f"refused address: {where} points at a loopback, private, link-local or otherwise non-public address"
            ) from exc
        except ConnectFailed as exc:
            raise fetch_failed(f"the media URL is unreachable: {exc}") from exc
        except NetError as exc:
            raise fetch_failed(f"the media URL gave no usable answer: {exc}") from exc
    raise fetch_failed(f"the media URL redirected more than {max_redirects} times")

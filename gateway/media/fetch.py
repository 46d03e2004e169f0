"""Fetch a media URL into a spool: http(s) only, bounded in time and size, every hop checked.

§11: ``MEDIA_FETCH_TIMEOUT_MS`` for the whole fetch (all hops, the body included),
at most ``MEDIA_MAX_BYTES`` of body (a declared Content-Length over it is refused
before reading; a body that grows past it is cut off), at most 3 redirects, each
hop refused when its host is or resolves to a loopback, private or link-local
address unless ``MEDIA_FETCH_ALLOW_PRIVATE``. Redirects are followed here, one at
a time, precisely so that every hop passes the address check.

The body streams into the spool chunk by chunk: a 50 MB fetch never sits in memory.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin, urlsplit

import httpx

from gateway.media.errors import fetch_failed, invalid_media, too_large
from gateway.media.storage import Spool
from gateway.webhooks.urls import resolves_private

MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def check_scheme(url: str) -> None:
    """INVALID_MEDIA unless ``url`` is a well-formed http(s) URL (the caller's mistake, not the network's)."""
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
    client: httpx.AsyncClient,
    max_redirects: int = MAX_REDIRECTS,
) -> str | None:
    """Stream ``url``'s body into ``spool``; returns the server's Content-Type (a hint only)."""
    check_scheme(url)
    try:
        async with asyncio.timeout(timeout_s):
            return await _follow(spool, url, allow_private, client, max_redirects)
    except TimeoutError as exc:
        raise fetch_failed(f"fetching the media URL timed out after {timeout_s:g} s") from exc


async def _follow(
    spool: Spool, url: str, allow_private: bool, client: httpx.AsyncClient, max_redirects: int
) -> str | None:
    for hop in range(max_redirects + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise fetch_failed("the media URL redirected to a non-http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not allow_private and await resolves_private(parts.hostname.strip("[]"), port):
            where = "the media URL" if hop == 0 else f"redirect {hop} of the media URL"
            raise fetch_failed(f"refused address: {where} points at a loopback, private or link-local address")
        try:
            response = await client.send(client.build_request("GET", url), stream=True)
        except httpx.HTTPError as exc:
            raise fetch_failed(f"the media URL is unreachable: {type(exc).__name__}") from exc
        try:
            if response.status_code in REDIRECTS and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            if not 200 <= response.status_code < 300:
                raise fetch_failed(f"the media URL answered HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > spool.max_bytes:
                raise too_large(spool.max_bytes)
            try:
                async for chunk in response.aiter_bytes(1 << 16):
                    spool.write(chunk)
            except httpx.HTTPError as exc:
                raise fetch_failed(f"the media URL's body broke off: {type(exc).__name__}") from exc
            content_type: str | None = response.headers.get("content-type")
            return content_type
        finally:
            await response.aclose()
    raise fetch_failed(f"the media URL redirected more than {max_redirects} times")

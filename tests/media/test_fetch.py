"""Media URL fetches: http(s) only, bounded in time and size, every redirect hop address-checked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from gateway.media.errors import MediaError
from gateway.media.fetch import fetch_into
from gateway.media.storage import MediaFiles

Answer = tuple[int, dict[str, str], bytes] | None  # None: never answer (a hanging server)
Serve = Callable[[Callable[[str], Answer]], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve(handler)`` → the base URL of a tiny HTTP/1.0 server on 127.0.0.1."""
    servers: list[asyncio.Server] = []
    release = asyncio.Event()

    async def start(handler: Callable[[str], Answer]) -> str:
        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await reader.readuntil(b"\r\n\r\n")
            answer = handler(request.split(b" ", 2)[1].decode())
            if answer is None:
                await release.wait()
            else:
                status, headers, body = answer
                head = f"HTTP/1.0 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(head.encode() + b"\r\n" + body)
                await writer.drain()
            writer.close()

        srv = await asyncio.start_server(on_client, "127.0.0.1", 0)
        servers.append(srv)
        return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"

    yield start
    release.set()
    for srv in servers:
        srv.close()
        await srv.wait_closed()


@pytest.fixture
async def fetch(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[bytes]]]:
    files = MediaFiles(tmp_path / "media")
    files.prepare()
    client = httpx.AsyncClient(follow_redirects=False, timeout=None, trust_env=False)

    async def run(url: str, *, allow_private: bool = True, max_bytes: int = 10**6, timeout_s: float = 5) -> bytes:
        with files.spool(max_bytes) as spool:
            await fetch_into(spool, url, timeout_s=timeout_s, allow_private=allow_private, client=client)
            return files.commit(spool).path.read_bytes()

    yield run
    await client.aclose()
    assert list(files.tmp.iterdir()) == []  # whatever happened, no temporary file is left


async def code_of(coro: Awaitable[object]) -> tuple[str, str]:
    with pytest.raises(MediaError) as err:
        await coro
    return err.value.code, err.value.message


async def test_a_body_is_fetched_through_redirects(serve: Serve, fetch: Callable[..., Awaitable[bytes]]) -> None:
    def handler(path: str) -> Answer:
        if path == "/start":
            return 302, {"Location": "/next"}, b""
        if path == "/next":
            return 301, {"Location": "/file.png"}, b""
        return 200, {"Content-Type": "image/png"}, b"PNGDATA" * 1000

    base = await serve(handler)
    assert await fetch(base + "/start") == b"PNGDATA" * 1000


async def test_a_loopback_url_is_refused(fetch: Callable[..., Awaitable[bytes]]) -> None:
    code, message = await code_of(fetch("http://127.0.0.1:9/x.png", allow_private=False))
    assert code == "MEDIA_FETCH_FAILED" and "refused address" in message
    code, _ = await code_of(fetch("http://[::1]:9/x.png", allow_private=False))
    assert code == "MEDIA_FETCH_FAILED"
    code, _ = await code_of(fetch("http://169.254.169.254/latest/meta-data", allow_private=False))
    assert code == "MEDIA_FETCH_FAILED"


async def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    """The first hop is public (mocked), the redirect points at 10.0.0.1: refused before any request to it."""
    asked: list[str] = []

    def answer(req: httpx.Request) -> httpx.Response:
        asked.append(str(req.url))
        return httpx.Response(302, headers={"Location": "http://10.0.0.1/secret"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer), follow_redirects=False)
    files = MediaFiles(tmp_path)
    files.prepare()
    with files.spool(1000) as spool:
        code, message = await code_of(
            fetch_into(spool, "http://93.184.216.34/a.png", timeout_s=5, allow_private=False, client=client)
        )
    await client.aclose()
    assert code == "MEDIA_FETCH_FAILED" and "redirect 1" in message and "refused address" in message
    assert asked == ["http://93.184.216.34/a.png"]


async def test_too_many_redirects(serve: Serve, fetch: Callable[..., Awaitable[bytes]]) -> None:
    base = await serve(lambda path: (302, {"Location": "/again"}, b""))
    code, message = await code_of(fetch(base + "/loop"))
    assert code == "MEDIA_FETCH_FAILED" and "more than 3" in message


async def test_a_url_that_times_out(serve: Serve, fetch: Callable[..., Awaitable[bytes]]) -> None:
    base = await serve(lambda path: None)
    code, message = await code_of(fetch(base + "/slow.jpg", timeout_s=0.3))
    assert code == "MEDIA_FETCH_FAILED" and "timed out" in message


async def test_non_2xx_and_unreachable(serve: Serve, fetch: Callable[..., Awaitable[bytes]]) -> None:
    base = await serve(lambda path: (404, {}, b"nope"))
    code, message = await code_of(fetch(base + "/missing.png"))
    assert code == "MEDIA_FETCH_FAILED" and "HTTP 404" in message
    code, message = await code_of(fetch("http://127.0.0.1:1/x"))
    assert code == "MEDIA_FETCH_FAILED" and "unreachable" in message


async def test_too_large_declared_or_streamed(serve: Serve, fetch: Callable[..., Awaitable[bytes]]) -> None:
    declared = await serve(lambda path: (200, {"Content-Length": "5000"}, b"x" * 5000))
    assert (await code_of(fetch(declared + "/a", max_bytes=1000)))[0] == "MEDIA_TOO_LARGE"
    streamed = await serve(lambda path: (200, {}, b"x" * 5000))  # no Content-Length: counted as it comes
    assert (await code_of(fetch(streamed + "/a", max_bytes=1000)))[0] == "MEDIA_TOO_LARGE"


async def test_only_http_urls(fetch: Callable[..., Awaitable[bytes]]) -> None:
    for url in ("file:///etc/passwd", "ftp://example.com/a.png", "javascript:alert(1)", "http://"):
        code, _ = await code_of(fetch(url))
        assert code == "INVALID_MEDIA"

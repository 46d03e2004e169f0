"""Media URL fetches: http(s) only, bounded in time and size, every redirect hop address-checked
(through the gateway's guarded client; the network and DNS are faked at the socket layer where a
public address is needed — tests/support/hostile.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.media.errors import MediaError
from gateway.media.fetch import fetch_into
from gateway.media.storage import MediaFiles
from gateway.net import GuardedClient
from tests.support.hostile import PUBLIC, Answers, FakeInternet

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
    client = GuardedClient()

    async def run(url: str, *, allow_private: bool = True, max_bytes: int = 10**6, timeout_s: float = 5) -> bytes:
        with files.spool(max_bytes) as spool:
            await fetch_into(spool, url, timeout_s=timeout_s, allow_private=allow_private, client=client)
            return files.commit(spool).path.read_bytes()

    yield run
    await client.close()
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


async def test_a_redirect_to_a_private_address_is_refused(
    tmp_path: Path, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first hop is public (carried to a local server), the redirect points at 10.0.0.1: refused
    before any request to it."""
    asked: list[str] = []

    def answer(path: str) -> Answer:
        asked.append(path)
        return 302, {"Location": "http://10.0.0.1/secret"}, b""

    base = await serve(answer)
    internet = FakeInternet().install(monkeypatch)
    internet.routes[(PUBLIC, 80)] = ("127.0.0.1", int(base.rsplit(":", 1)[1]))
    client = GuardedClient()
    files = MediaFiles(tmp_path)
    files.prepare()
    with files.spool(1000) as spool:
        code, message = await code_of(
            fetch_into(spool, f"http://{PUBLIC}/a.png", timeout_s=5, allow_private=False, client=client)
        )
    await client.close()
    assert code == "MEDIA_FETCH_FAILED" and "redirect 1" in message and "refused address" in message
    assert asked == ["/a.png"] and internet.connects == [(PUBLIC, 80)]


async def test_dns_rebinding_never_reaches_loopback(
    tmp_path: Path, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolves public, then (on the next connection) to 127.0.0.1: the first fetch gets the
    public server's file, the second is refused by the resolver; the local server is never connected to."""
    victim_hits: list[str] = []
    victim = await serve(lambda path: victim_hits.append(path) or (200, {}, b"SECRET"))
    public = await serve(lambda path: (200, {"Content-Type": "image/png"}, b"PNGDATA"))
    port = int(victim.rsplit(":", 1)[1])
    internet = FakeInternet().install(monkeypatch)
    internet.routes[(PUBLIC, port)] = ("127.0.0.1", int(public.rsplit(":", 1)[1]))
    resolver = Answers({"cdn.test": [PUBLIC, "127.0.0.1"]})
    client = GuardedClient(resolver=resolver)
    files = MediaFiles(tmp_path)
    files.prepare()
    url = f"http://cdn.test:{port}/a.png"
    try:
        with files.spool(1000) as spool:
            await fetch_into(spool, url, timeout_s=5, allow_private=False, client=client)
            assert files.commit(spool).path.read_bytes() == b"PNGDATA"
        with files.spool(1000) as spool:  # the server closed the connection (HTTP/1.0): a new one, a new lookup
            code, message = await code_of(fetch_into(spool, url, timeout_s=5, allow_private=False, client=client))
    finally:
        await client.close()
    assert code == "MEDIA_FETCH_FAILED" and "refused address" in message
    assert victim_hits == [] and internet.connects == [(PUBLIC, port)] and resolver.calls == ["cdn.test"] * 2


async def test_a_compressed_answer_is_refused(serve: Serve, fetch: Callable[..., Awaitable[bytes]]) -> None:
    """Nothing is inflated (no decompression bombs), and an encoded body is not stored as if it were the file."""
    base = await serve(lambda path: (200, {"Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00junk"))
    code, message = await code_of(fetch(base + "/a.png"))
    assert code == "MEDIA_FETCH_FAILED" and "Content-Encoding" in message


async def test_control_characters_in_a_url(fetch: Callable[..., Awaitable[bytes]]) -> None:
    for url in ("http://example.com/a\r\nX: 1", "http://example.com/\ta.png", "http://exa\x00mple.com/"):
        code, _ = await code_of(fetch(url))
        assert code == "INVALID_MEDIA"


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

"""The guarded client against hostile servers on real sockets (127.0.0.1): bounded heads and bodies,
no redirects, TLS verified, only complete answers returned, the trust levels kept apart."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.net import BadResponse, Blocked, ConnectFailed, GuardedClient, NetError, Reply
from tests.support.hostile import HostileServer, hostile, read_head, rss_bytes
from tests.support.pace import pace
from tests.support.poll import until

OK = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
async def client() -> AsyncIterator[GuardedClient]:
    c = GuardedClient()
    yield c
    await c.close()


async def post(client: GuardedClient, server: HostileServer, *, timeout_s: float = 5.0) -> Reply:
    return await client.post(server.url(), b'{"a":1}', HEADERS, guarded=False, timeout_s=timeout_s)


async def test_a_plain_answer_and_keep_alive(client: GuardedClient) -> None:
    """Two posts: both answered, over one kept-alive connection, with the body and headers sent."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            await read_head(reader, server)
            writer.write(OK)
            await writer.drain()

    async with hostile(script) as server:
        assert (await post(client, server)).status == 204
        assert (await post(client, server)).status == 204
    assert server.connections == 1
    head = server.heads[0].lower()
    assert head.startswith(b"post /hook http/1.1") and b"user-agent: wa-gateway/" in head
    assert b"accept-encoding: identity" in head and b"cookie" not in head


async def test_endless_headers_fail_cleanly_with_bounded_memory(client: GuardedClient) -> None:
    """A 200 followed by header after header, without end: refused after the header limit, RSS bounded."""
    peak = [rss_bytes()]
    before = peak[0]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Pad: " + b"a" * 4000 + b"\r\n"
        for i in range(50_000):  # 200 MB if nobody stops it
            writer.write(line)
            await writer.drain()
            if i % 64 == 0:
                peak[0] = max(peak[0], rss_bytes())

    async with hostile(script) as server:
        with pytest.raises(BadResponse, match="malformed response"):
            await post(client, server, timeout_s=30)
    assert peak[0] - before < 48 << 20


async def test_one_endless_header_line_fails_cleanly(client: GuardedClient) -> None:
    """A header line that never ends: refused at the line limit, not buffered whole."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        for _ in range(50_000):
            writer.write(b"b" * 4000)
            await writer.drain()

    async with hostile(script) as server:
        with pytest.raises(BadResponse, match="malformed response"):
            await post(client, server, timeout_s=30)


async def test_a_body_cut_short_is_not_an_answer(client: GuardedClient) -> None:
    """A 200 announcing 100 bytes, then 10 and a closed connection: an error, never a Reply."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()

    async with hostile(script) as server:
        with pytest.raises(BadResponse, match="broke off"):
            await post(client, server)


async def test_a_chunked_body_cut_short_is_not_an_answer(client: GuardedClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123")
        await writer.drain()

    async with hostile(script) as server:
        with pytest.raises(BadResponse):
            await post(client, server)


async def test_a_huge_body_is_not_read_past_the_cap(client: GuardedClient) -> None:
    """A 200 with a 64 MB body: answered at once; the client reads its cap and drops the connection."""
    sent = [0]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
        for _ in range(1024):
            writer.write(b"x" * 65536)
            await writer.drain()
            sent[0] += 65536

    async with hostile(script) as server:
        assert (await post(client, server)).status == 200
        # the client hung up: the server's writes fail long before 64 MB
        await until(lambda: not server.serving, 5, "the hostile server stopped writing")
    assert sent[0] < 32 << 20


async def test_a_slow_trickle_times_out(client: GuardedClient) -> None:
    """One byte at a time, never finishing: cut off at the whole exchange's timeout, however it trickles."""
    trickled = [0]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 5000:
            writer.write(bytes([byte]))
            await writer.drain()
            trickled[0] += 1
            await pace(0.01)  # the hostile server's speed

    async with hostile(script) as server:
        with pytest.raises(TimeoutError):
            await post(client, server, timeout_s=0.3)
    assert trickled[0] >= 2  # it was trickling, not silent


async def test_garbage_is_a_bad_response(client: GuardedClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"\x00\xff\x13garbage that is not HTTP\r\n\r\n" * 10)
        await writer.drain()

    async with hostile(script) as server:
        with pytest.raises(BadResponse):
            await post(client, server)


async def test_a_closed_connection_without_answer(client: GuardedClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)

    async with hostile(script) as server:
        with pytest.raises(BadResponse, match="closed"):
            await post(client, server)


async def test_a_refused_connection(client: GuardedClient) -> None:
    async with hostile(read_head) as server:
        url = server.url()
    with pytest.raises(ConnectFailed):
        await client.post(url, b"{}", HEADERS, guarded=False, timeout_s=5)


async def test_a_redirect_is_not_followed(client: GuardedClient) -> None:
    """A 302 comes back as a 302; its Location is never requested."""
    async with hostile(read_head) as elsewhere:

        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_head(reader)
            location = elsewhere.url("/x").encode()
            writer.write(b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

        async with hostile(script) as server:
            reply = await post(client, server)
        assert reply.status == 302 and reply.headers["location"] == elsewhere.url("/x")
    assert elsewhere.connections == 0


async def test_a_compressed_answer_is_not_inflated(client: GuardedClient) -> None:
    """auto_decompress is off: a 'gzip' body (here a bomb's header and junk) is never inflated."""
    body = b"\x1f\x8b\x08\x00" + b"\x00" * 60

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async with hostile(script) as server, client.get(server.url(), guarded=False) as response:
        got = b"".join([chunk async for chunk in response.chunks()])
    assert got == body


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server TLS context with a self-signed certificate for 127.0.0.1 (made by the openssl CLI)."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed for the TLS test"
    d: Path = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


async def test_a_self_signed_certificate_is_refused(client: GuardedClient, self_signed: ssl.SSLContext) -> None:
    """TLS is verified: a self-signed peer fails the handshake and never sees the request."""
    async with hostile(lambda r, w: read_head(r, server), tls=self_signed) as server:
        with pytest.raises(ConnectFailed, match="certificate"):
            await post(client, server)
    assert server.heads == []


async def test_guarded_refuses_literal_and_local_hosts_before_connecting(client: GuardedClient) -> None:
    """Guarded: 127.0.0.1, [::1], localhost and a mapped loopback never connect; trusted: it is answered."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(OK)
        await writer.drain()

    async with hostile(script) as server:
        port = server.port
        for url in (
            server.url(),
            f"http://localhost:{port}/hook",
            f"http://[::1]:{port}/hook",
            f"http://[::ffff:127.0.0.1]:{port}/hook",
            f"http://[64:ff9b::7f00:1]:{port}/hook",
            f"http://100.100.100.200:{port}/hook",
        ):
            with pytest.raises(Blocked):
                await client.post(url, b"{}", HEADERS, guarded=True, timeout_s=5)
        for legacy in ("2130706433", "127.1", "0x7f.0.0.1", "0177.0.0.1", "0"):  # other spellings of loopback
            with pytest.raises(NetError):
                await client.post(f"http://{legacy}:{port}/hook", b"{}", HEADERS, guarded=True, timeout_s=5)
        assert server.connections == 0
        assert (await post(client, server)).status == 204

"""The server writes a small response in one system call: head and body together (gateway.server.HeadWithBody).

uvicorn writes a response's head the moment the app sends it and the body in a second write; on this
machine each write to a socket costs as much as a fifth of a small request's whole handling. These tests
run the gateway's protocol class in uvicorn on a real socket, with its transport recorded, so they see
the writes the kernel sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.server import JOIN_LIMIT, ConnectionLimits, HeadWithBody, guarded_protocol
from tests.support.net import HOST
from tests.support.poll import until


class RecordingTransport:
    """A transport that keeps what is written through it (everything else goes to the real one)."""

    def __init__(self, real: asyncio.Transport, writes: list[bytes]) -> None:
        self._real = real
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._real.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Server:
    def __init__(self, app: Starlette) -> None:
        self.writes: list[bytes] = []
        writes = self.writes
        base = guarded_protocol(ConnectionLimits())

        class Recorded(base):  # type: ignore[misc, valid-type]
            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(RecordingTransport(transport, writes))  # type: ignore[arg-type]

        self.config = uvicorn.Config(app, host=HOST, port=0, http=Recorded, lifespan="off", log_level="warning")
        self.server = uvicorn.Server(self.config)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Server:
        self.task = asyncio.create_task(self.server.serve())
        await until(lambda: self.server.started, what="uvicorn started")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])


async def _request(port: int, path: str, extra: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\n".encode() + extra + b"\r\n")
    await writer.drain()
    return reader, writer


async def test_a_small_response_is_one_write_with_head_and_body() -> None:
    app = Starlette(routes=[Route("/small", lambda _r: JSONResponse({"ok": True}))])
    async with _Server(app) as srv:
        reader, writer = await _request(srv.port, "/small")
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(len(b'{"ok":true}'))
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == b'{"ok":true}'
    assert srv.writes == [head + body]  # one write: uvicorn alone makes two


async def test_a_streamed_response_head_goes_out_before_a_slow_first_chunk() -> None:
    release = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        await release.wait()
        yield b"late"

    app = Starlette(routes=[Route("/stream", lambda _r: StreamingResponse(chunks(), media_type="text/plain"))])
    async with _Server(app) as srv:
        reader, writer = await _request(srv.port, "/stream")
        head = await reader.readuntil(b"\r\n\r\n")  # arrives while the body is still held up
        assert b"transfer-encoding: chunked" in head
        assert not release.is_set()
        release.set()
        assert await reader.readuntil(b"0\r\n\r\n") == b"4\r\nlate\r\n0\r\n\r\n"
        writer.close()
    assert srv.writes[0] == head


async def test_100_continue_is_written_at_once_and_the_answer_after_it() -> None:
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    async with _Server(app) as srv:
        reader, writer = await asyncio.open_connection(HOST, srv.port)
        writer.write(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hi")
        head = await reader.readuntil(b"\r\n\r\n")
        assert await reader.readexactly(2) == b"hi"
        writer.close()
    assert srv.writes == [b"HTTP/1.1 100 Continue\r\n\r\n", head + b"hi"]


class _Sink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def test_a_held_head_goes_out_before_the_connection_closes() -> None:
    sink = _Sink()
    t = HeadWithBody(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    assert sink.writes == []
    t.close()  # an app that failed after starting its response: uvicorn closes the connection
    assert sink.writes == [b"HTTP/1.1 500 Internal Server Error\r\n\r\n"] and sink.closed
    turn_over = asyncio.Event()
    asyncio.get_running_loop().call_soon(turn_over.set)  # queued after the flush HeadWithBody queued
    await turn_over.wait()  # the flush has run: it found nothing left to write
    assert len(sink.writes) == 1


async def test_a_big_body_is_not_copied_onto_its_head() -> None:
    sink = _Sink()
    t = HeadWithBody(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    big = b"x" * (JOIN_LIMIT + 1)
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(big)
    assert sink.writes[0] == b"HTTP/1.1 200 OK\r\n\r\n" and sink.writes[1] is big
    small = HeadWithBody(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    small.write(b"HTTP/1.1 200 OK\r\n\r\n")
    small.write(b"y" * JOIN_LIMIT)
    assert sink.writes[2] == b"HTTP/1.1 200 OK\r\n\r\n" + b"y" * JOIN_LIMIT


async def test_a_head_request_gets_its_head_though_no_body_follows() -> None:
    app = Starlette(routes=[Route("/small", lambda _r: JSONResponse({"ok": True}))])
    async with _Server(app) as srv:
        reader, writer = await asyncio.open_connection(HOST, srv.port)
        writer.write(b"HEAD /small HTTP/1.1\r\nhost: x\r\n\r\nGET /small HTTP/1.1\r\nhost: x\r\n\r\n")  # pipelined
        first = await reader.readuntil(b"\r\n\r\n")
        second = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(len(b'{"ok":true}'))
        writer.close()
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 11" in first
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and body == b'{"ok":true}'
    assert srv.writes == [first, second + body]

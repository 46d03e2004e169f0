"""Hostile HTTP servers on 127.0.0.1 for the outbound client's tests: each connection is handed to a
script (``async def script(reader, writer)``) that may send anything — endless headers, garbage, half
a body, a trickle — and the server counts connections and keeps the first request head of each.

Every script must be bounded (in writes, or by an event the fixture sets at teardown).

:class:`FakeInternet` and :class:`Answers` stand in for the network and DNS, so guarded requests
(which never connect to 127.0.0.1) can be tested without a packet leaving the machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp.connector
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

PUBLIC = "93.184.216.34"  # a global address; FakeInternet never really connects to it
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class HostileServer:
    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.connections = 0
        self.heads: list[bytes] = []  # the request heads that arrived (as far as the script read them)
        self.connected = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def serving(self) -> int:
        """Connections whose script is still running."""
        return len(self._tasks)

    def url(self, path: str = "/hook") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def start(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.connected.set()
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client hung up on us: what a hostile server expects
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


async def read_head(reader: asyncio.StreamReader, server: HostileServer | None = None) -> bytes:
    """One request head, and its body by Content-Length (so the connection can be answered and reused)."""
    head = await reader.readuntil(b"\r\n\r\n")
    if server is not None:
        server.heads.append(head)
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and int(value) > 0:
            await reader.readexactly(int(value))
    return head


@contextlib.asynccontextmanager
async def hostile(script: Script, tls: ssl.SSLContext | None = None) -> AsyncIterator[HostileServer]:
    server = await HostileServer(script, tls).start()
    try:
        yield server
    finally:
        await server.close()


def rss_bytes() -> int:
    """This process's resident set size now (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class FakeInternet:
    """Stands in for the network at the socket layer (``aiohappyeyeballs.start_connection``, which
    aiohttp connects through): records every address the client connects to; an address in ``routes``
    is carried to a local server instead; loopback connects for real (so a local server sees it);
    any other address refuses — no packet ever leaves the machine."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self.routes: dict[tuple[str, int], tuple[str, int]] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeInternet:
        real = aiohttp.connector.aiohappyeyeballs.start_connection

        async def start_connection(addr_infos: list[Any], **kw: Any) -> socket.socket:
            infos = []
            for family, type_, proto, canon, sockaddr in addr_infos:
                where = (str(sockaddr[0]), int(sockaddr[1]))
                self.connects.append(where)
                if where in self.routes:
                    infos.append((socket.AF_INET, type_, proto, canon, self.routes[where]))
                elif where[0] == "127.0.0.1":
                    infos.append((family, type_, proto, canon, sockaddr))
            if not infos:
                raise ConnectionRefusedError(111, "refused (test: no network)")
            sock: socket.socket = await real(infos, **kw)
            return sock

        monkeypatch.setattr(aiohttp.connector.aiohappyeyeballs, "start_connection", start_connection)
        return self


class Answers(AbstractResolver):
    """A DNS server under the test's control: ``answers[name]`` is a list of replies, one per lookup
    (the last one repeats) — e.g. ``[PUBLIC, "127.0.0.1"]`` is a rebinding attacker."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        replies = self.answers[host]
        ip = replies[min(self.calls.count(host), len(replies)) - 1]
        return [{"hostname": host, "host": ip, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None

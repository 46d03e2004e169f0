"""A tiny webhook receiver on 127.0.0.1 for tests: a raw asyncio HTTP/1.1 server
that records every request and answers what the test scripts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class Hit:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    n: int  # 1-based order of arrival

    def json(self) -> Any:
        return orjson.loads(self.body)


Answer = tuple[int, dict[str, str]]
Responder = Callable[[Hit], Answer]


@dataclass
class Receiver:
    """Start with ``await Receiver(port).start()``; ``respond`` decides each answer (default 200)."""

    port: int
    respond: Responder = field(default=lambda hit: (200, {}))
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Condition()
        self._conns: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._conns):
                w.close()
            await self._server.wait_closed()
            self._server = None

    async def wait(self, pred: Callable[[list[Hit]], bool], timeout: float = 5.0) -> list[Hit]:
        """Wait (bounded) until ``pred(hits)`` holds."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: pred(self.hits))
        return self.hits

    async def wait_count(self, n: int, timeout: float = 5.0) -> list[Hit]:
        return await self.wait(lambda hits: len(hits) >= n, timeout)

    def events(self) -> list[str]:
        return [h.json()["event"] for h in self.hits]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                async with self._changed:
                    hit = Hit(path, headers, body, len(self.hits) + 1)
                    self.hits.append(hit)
                    self._changed.notify_all()
                status, extra = self.respond(hit)
                out = [f"HTTP/1.1 {status} X", "Content-Length: 2", *(f"{k}: {v}" for k, v in extra.items())]
                writer.write(("\r\n".join(out) + "\r\n\r\nok").encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

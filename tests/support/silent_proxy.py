"""A "proxy" that accepts connections and never answers, for the neonize tests that need whatsmeow held
in its dial inside Go, exactly as behind a dead network (``proxy`` in tests/drivers/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib


class SilentProxy:
    """Accepts TCP connections and never answers; ``hang_up()`` closes them all.

    ``dials`` counts whatsmeow's dials (they send a CONNECT request); the
    driver's pre-flight probe connects and hangs up without a word.
    """

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.dials = 0
        self.server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)
            with contextlib.suppress(OSError):
                if await reader.read(1):
                    self.dials += 1

        self.server = await asyncio.start_server(hold, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def hang_up(self) -> None:
        for writer in self.writers:
            writer.close()

    async def stop(self) -> None:
        self.hang_up()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

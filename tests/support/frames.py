"""A WebSocket client that records every frame, with deadline-bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import websockets


class Frames:
    """Wraps a connected ``websockets`` client; a reader task appends each frame as it arrives."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self._new = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                async with self._new:
                    self.frames.append(json.loads(raw))
                    self._new.notify_all()
        async with self._new:
            self._new.notify_all()

    async def wait(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5.0, start: int = 0
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout), self._new:
            while True:
                for f in self.frames[start:]:
                    if pred(f):
                        return f
                if self._task.done():
                    raise AssertionError(f"socket closed; frames: {self.frames}")
                await self._new.wait()

    async def event(self, name: str, token: str | None = None, timeout: float = 5.0, start: int = 0) -> dict[str, Any]:
        return await self.wait(
            lambda f: f["event"] == name and (token is None or f.get("token") == token), timeout, start
        )

    async def send(self, action: str, payload: dict[str, Any] | None = None) -> None:
        await self.ws.send(json.dumps({"action": action, "payload": payload or {}}))

    def names(self) -> list[str]:
        return [f["event"] for f in self.frames]

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await self._task

"""A multipart body streamed to the gateway, with the peak of Python's allocations meanwhile: how the
suite checks that a large upload is spooled, never held in memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator

import httpx


async def post_measuring_peak(
    client: httpx.AsyncClient, path: str, body: AsyncIterator[bytes], boundary: str
) -> tuple[httpx.Response, int]:
    """``POST path`` with ``body`` (a ``multipart/form-data`` stream with ``boundary``); the answer and the
    peak of traced allocations, in bytes, while it was sent and answered."""
    tracemalloc.start()
    try:
        r = await client.post(path, content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return r, peak

"""Polling with a deadline: the one place the tests wait for something they cannot await.

A test waits on an event where there is one; where there is none (another process, a page, a file, a
server's state) it asks again every ``INTERVAL_S`` until the answer is truthy or the deadline passes.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

INTERVAL_S = 0.01


async def until(fn: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> Any:
    """Call ``fn`` (sync or async) until it returns something truthy, and return that; AssertionError
    naming ``what`` once ``timeout`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = fn()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(INTERVAL_S)


def until_sync(fn: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> Any:
    """:func:`until` for code outside an event loop (a test driving a server process)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(INTERVAL_S)

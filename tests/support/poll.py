"""Polling with a deadline: the one place the tests wait for something they cannot await.

A test waits on an event where there is one; where there is none (another process, a page, a file, a
server's state) it asks again until the answer is truthy or the deadline passes: after ``FIRST_S``, then
half as long again each time up to ``EVERY_S``. A quick answer is seen at once, and a wait of seconds
(a failover, a lease running out) asks 20 times a second rather than 100 — some questions are a database
query or an HTTP call, and a suite of parallel workers asking them as fast as it can was CPU taken from
the processes under test.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any

FIRST_S = 0.005
EVERY_S = 0.05


def _pauses() -> Iterator[float]:
    pause = FIRST_S
    while True:
        yield pause
        pause = min(pause * 1.5, EVERY_S)


async def until(fn: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> Any:
    """Call ``fn`` (sync or async) until it returns something truthy, and return that; AssertionError
    naming ``what`` once ``timeout`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pauses = _pauses()
    while True:
        value = fn()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(next(pauses))


def until_sync(fn: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> Any:
    """:func:`until` for code outside an event loop (a test driving a server process)."""
    deadline = time.monotonic() + timeout
    pauses = _pauses()
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(next(pauses))

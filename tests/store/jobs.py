"""Jobs queued without waiting (``submit_sent``, ``submit_receipt``): one item's answer, once committed."""

from __future__ import annotations

import asyncio
from typing import Any


async def settled(queued: tuple[asyncio.Future[list[Any]], int]) -> Any:
    """What the item at ``index`` of the job got, after its commit."""
    future, index = queued
    return (await future)[index]

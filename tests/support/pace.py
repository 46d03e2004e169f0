"""Time the tests let pass on purpose, kept here so no test waits by sleeping.

- :func:`pace`: a simulated peer's speed (a hostile server trickling bytes, a client pausing between
  requests). The time passing *is* the behaviour under test; nothing is being waited for.
- :func:`next_turn`: the event loop's next turn, for a fake that answers "later" (a fake network, a fake
  clock): resolved by a callback queued now, so everything queued before it has run.
"""

from __future__ import annotations

import asyncio


async def pace(seconds: float) -> None:
    """Let ``seconds`` pass: the speed of a simulated peer."""
    await asyncio.sleep(seconds)


async def next_turn() -> None:
    """Return after the callbacks already queued on the loop have run."""
    loop = asyncio.get_running_loop()
    turned: asyncio.Future[None] = loop.create_future()
    loop.call_soon(turned.set_result, None)
    await turned

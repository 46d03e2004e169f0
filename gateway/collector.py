"""The garbage collector's settings for a long-running server.

CPython's cyclic collector runs a young-generation pass every 700 net allocations of container objects
and, every so often, a full pass over everything alive. A gateway under load holds many live, short-lived
containers at once (requests in flight, messages and receipts queued for the next group commit), so the
default thresholds promote them to the old generation and the full passes grow with the backlog:
measured in-process (``python -m bench.send_cost``), a send cost ~420 µs of CPU with the defaults, of
which full collections took a third (single passes of 0.2–0.6 s, stalling the event loop), and ~280 µs
with the settings below. Two changes, both common for servers:

- after start-up, :func:`gc.freeze` moves everything built so far (modules, classes, the runtime) into the
  permanent generation, so no pass ever traverses it again;
- the young generation is collected every 50,000 allocations instead of 700, so objects that die within
  a request or a commit are freed by reference counting before any pass promotes them (the price: cyclic
  garbage waits a little longer, a few MiB at most).
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 20)
_frozen = False


def tune_for_serving() -> None:
    """Apply the thresholds and, once per process, freeze what start-up built (idempotent: the test
    suite starts many apps in one process, and a second freeze would only pin more objects)."""
    global _frozen
    gc.set_threshold(*THRESHOLDS)
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()

"""Random bits for ids that must be unique, not secret: request ids, webhook ids,
the sandbox's message ids.

One PRNG seeded with 256 bits from the OS: a ``getrandom()`` system call costs
about 7 µs on this class of VM, once per request, send and delivery. Secrets
(API keys, sessions, signing) keep using :mod:`secrets`.
"""

from __future__ import annotations

import os
import random

_rng = random.Random(int.from_bytes(os.urandom(32), "big"))


def random_bits(k: int) -> int:
    """A random ``k``-bit non-negative integer."""
    return _rng.getrandbits(k)

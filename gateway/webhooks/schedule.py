"""When a failed delivery is tried again: equal-jitter backoff and ``Retry-After``.

After the n-th failed attempt the next one waits a uniformly random time
between half and all of ``min(WEBHOOK_RETRY_MAX_MS, WEBHOOK_RETRY_BASE_MS · 2^(n-1))``,
or longer if the receiver's ``Retry-After`` asks for it (capped at
``WEBHOOK_RETRY_MAX_MS``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime


def backoff_s(failures: int, base_ms: int, max_ms: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``failures``-th failed attempt (1-based): equal jitter,
    uniformly in ``[c/2, c]`` with ``c = min(max, base · 2^(failures-1))``."""
    ceiling: float = min(max_ms, base_ms << min(max(failures, 1) - 1, 40)) / 1000
    return ceiling / 2 + rand() * ceiling / 2


def retry_after_s(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header in seconds from ``now`` (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)

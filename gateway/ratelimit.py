"""Requests per key per rolling minute (sliding-window counter).

Two fixed one-minute windows, the previous one weighted by how much of it
still overlaps the rolling minute: O(1) memory and time per key, within a few
percent of an exact log of timestamps.

In a cluster (gateway.cluster.ratelimits) each node also counts what the other
nodes report of the same key (:meth:`RateLimiter.heard`, their windows' counts,
every half second), on wall-clock windows so that every node's minute is the same
minute; :meth:`RateLimiter.take_reports` gives what this node has to report.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from cachetools import TTLCache


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.per_minute = per_minute
        self.clock = clock
        # key -> [window_start, count_current, count_previous]
        self._windows: TTLCache[str, list[float]] = TTLCache(max_keys, 120, timer=clock)
        # In a cluster: key -> {node: [window_start, count_current, count_previous]} as the other nodes
        # last reported them, and the keys hit here since this node last reported.
        self._heard: TTLCache[str, dict[str, list[float]]] | None = None
        self._hit_since: set[str] = set()
        self.max_keys = max_keys

    def share(self) -> None:
        """Count other nodes' reports from now on (see the module's text)."""
        self._heard = TTLCache(self.max_keys, 120, timer=self.clock)

    def heard(self, node: str, key: str, window_start: float, current: float, previous: float) -> None:
        """Another node's counts of ``key``."""
        if self._heard is not None:
            self._heard.setdefault(key, {})[node] = [window_start, current, previous]

    def take_reports(self) -> list[tuple[str, float, float, float]]:
        """``(key, window_start, current, previous)`` of the keys hit here since the last call."""
        out = []
        for key in self._hit_since:
            w = self._windows.get(key)
            if w is not None:
                out.append((key, w[0], w[1], w[2]))
        self._hit_since = set()
        return out

    def _others(self, key: str, start: float, weight: float) -> float:
        assert self._heard is not None
        nodes = self._heard.get(key)
        if not nodes:
            return 0.0
        total = 0.0
        for w_start, current, previous in nodes.values():
            if abs(w_start - start) < 1:  # the same wall-clock minute (floats: never compared exactly)
                total += previous * weight + current
            elif abs(w_start - (start - 60)) < 1:
                total += current * weight  # their current window is this one's previous
        return total

    def hit(self, key: str) -> float:
        """Count one request; return 0 if allowed, else seconds until one would be."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        start = now - (now % 60)
        w = self._windows.get(key)
        if w is None:
            w = [start, 0.0, 0.0]
        elif w[0] != start:
            previous = w[1] if start - w[0] == 60 else 0.0
            w = [start, 0.0, previous]
        weight = 1 - (now - start) / 60
        estimate = w[2] * weight + w[1]
        if self._heard is not None:
            estimate += self._others(key, start, weight)
            self._hit_since.add(key)
        if estimate + 1 > self.per_minute:
            self._windows[key] = w
            # Earliest moment the weighted previous window has shrunk enough.
            if w[2] > 0 and w[1] < self.per_minute:
                needed = (estimate + 1 - self.per_minute) / w[2] * 60
                return max(1.0, math.ceil(needed))
            return max(1.0, math.ceil(60 - (now - start)))
        w[1] += 1
        self._windows[key] = w
        return 0.0

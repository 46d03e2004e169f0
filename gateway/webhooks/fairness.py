"""Which due deliveries start next: fair per account, and per target origin (issue 13 §7).

Due rows wait in *lanes*: one per (owner, origin). The owner is the account whose target the
row goes to — the operator for ``WEBHOOK_URL`` and for the admin's own devices — and the origin
is the URL's scheme, host and port (so a tenant cannot multiply its share by varying paths or
query strings). Rules, in the order :meth:`FairQueue.choose` applies them:

- at most ``origin_limit`` (``WEBHOOK_ORIGIN_CONCURRENCY``, default 8) attempts in flight per lane:
  a receiver that hangs holds at most that many of its owner's attempts;
- at most ``limit`` (``WEBHOOK_CONCURRENCY``, default 64) in flight in all; but an owner with fewer
  than ``origin_limit`` attempts in flight may start one even when all ``limit`` are taken, up to a
  hard ceiling of ``2 × limit``. So an account whose receivers all hang can fill the shared slots,
  yet every other account still has its own ``origin_limit`` slots: its deliveries go out at once;
- owners take turns: each round gives every owner with due work one attempt (the owner with the
  oldest due row first), and an owner's lanes take turns the same way. The order depends only on
  the due times and the keys, never on chance, so it is reproducible in tests.

The queue only decides; the dispatcher claims, sends and records.
"""

from __future__ import annotations

import heapq
from collections import deque
from urllib.parse import urlsplit

Owner = int | None  # an account id; None: the operator
Lane = tuple[Owner, str, str, int]  # (owner, scheme, host, port)
_ORIGIN_CACHE = 10_000


def origin_of(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``url`` (default ports filled in, host lower-case); a URL that cannot be
    parsed is its own origin (its attempt fails when sent)."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
        return scheme, (parts.hostname or ""), port
    except ValueError:
        return "", url, 0


class FairQueue:
    """Due delivery ids by lane, heaps of ``(next_attempt_at, id)``; counts of attempts in flight."""

    def __init__(self, limit: int, origin_limit: int) -> None:
        self.limit = limit
        self.origin_limit = max(1, min(origin_limit, limit))
        self.ceiling = 2 * limit
        self.in_flight = 0
        self._due: dict[Lane, list[tuple[float, int]]] = {}
        # Plain dicts, not Counters: a missing key is the common case here and Counter's is slow.
        self._lane_busy: dict[Lane, int] = {}
        self._owner_busy: dict[Owner, int] = {}
        self._origins: dict[str, tuple[str, str, int]] = {}

    def lane(self, owner: Owner, url: str) -> Lane:
        origin = self._origins.get(url)
        if origin is None:
            if len(self._origins) >= _ORIGIN_CACHE:
                self._origins.clear()
            origin = self._origins[url] = origin_of(url)
        return (owner, *origin)

    def push(self, lane: Lane, due: float, row_id: int) -> None:
        heapq.heappush(self._due.setdefault(lane, []), (due, row_id))

    def busy(self, lane: Lane) -> int:
        return self._lane_busy.get(lane, 0)

    def done(self, lane: Lane) -> None:
        """An attempt of ``lane`` ended (or never started): its slot is free again."""
        self.in_flight -= 1
        left = self._lane_busy[lane] - 1
        if left:
            self._lane_busy[lane] = left
        else:
            del self._lane_busy[lane]
        owner = lane[0]
        left = self._owner_busy[owner] - 1
        if left:
            self._owner_busy[owner] = left
        else:
            del self._owner_busy[owner]

    def _may_start(self, owner: Owner) -> bool:
        if self.in_flight < self.limit:
            return True
        return self.in_flight < self.ceiling and self._owner_busy.get(owner, 0) < self.origin_limit

    def _take(self, lane: Lane, heap: list[tuple[float, int]], chosen: list[tuple[int, Lane]]) -> None:
        chosen.append((heapq.heappop(heap)[1], lane))
        self.in_flight += 1
        self._lane_busy[lane] = self._lane_busy.get(lane, 0) + 1
        self._owner_busy[lane[0]] = self._owner_busy.get(lane[0], 0) + 1
        if not heap:
            del self._due[lane]

    def _startable(self, lane: Lane, heap: list[tuple[float, int]], now: float) -> bool:
        return bool(heap) and heap[0][0] <= now and self._lane_busy.get(lane, 0) < self.origin_limit

    def choose(self, now: float) -> list[tuple[int, Lane]]:
        """Take due rows, owners and their lanes in turn, within the limits; each is counted in flight
        until :meth:`done`."""
        cap = self.origin_limit
        heads = [
            (heap[0][0], _owner_key(lane[0]), lane)
            for lane, heap in self._due.items()
            if heap[0][0] <= now and self._lane_busy.get(lane, 0) < cap
        ]
        chosen: list[tuple[int, Lane]] = []
        if len(heads) == 1:  # the common case: one receiver with work
            lane = heads[0][2]
            heap = self._due[lane]
            while self._startable(lane, heap, now) and self._may_start(lane[0]):
                self._take(lane, heap, chosen)
            return chosen
        heads.sort(key=_order)
        turns: dict[Owner, deque[Lane]] = {}
        for _, _, lane in heads:  # each owner's lanes, oldest head first; owners by their oldest head
            turns.setdefault(lane[0], deque()).append(lane)
        owners = deque(turns)
        while owners:
            owner = owners.popleft()
            if not self._may_start(owner):
                continue
            lanes = turns[owner]
            lane = lanes.popleft()
            heap = self._due[lane]
            self._take(lane, heap, chosen)
            if self._startable(lane, heap, now):
                lanes.append(lane)
            if lanes:
                owners.append(owner)
        return chosen

    def drain(self) -> list[int]:
        """Empty the queue of rows not started (attempts in flight stay counted); their ids."""
        ids = [row_id for heap in self._due.values() for _, row_id in heap]
        self._due.clear()
        return ids

    def next_due(self, now: float) -> float | None:
        """Seconds until the earliest queued row that could start (None: only a finished attempt or new
        rows can change that, and both wake the dispatcher)."""
        heads = [
            heap[0][0]
            for lane, heap in self._due.items()
            if self._lane_busy.get(lane, 0) < self.origin_limit and self._may_start(lane[0])
        ]
        return max(0.0, min(heads) - now) if heads else None


def _owner_key(owner: Owner) -> int:
    return -1 if owner is None else owner


def _order(item: tuple[float, int, Lane]) -> tuple[float, int, str, str, int]:
    due, owner, (_, scheme, host, port) = item
    return due, owner, scheme, host, port

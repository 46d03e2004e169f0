"""Threads: where neonize's blocking calls run, and the lock that keeps Go's maps whole.

* :class:`DaemonPool` — a small per-device pool of daemon threads for the
  short calls (send, on-WhatsApp check, …), so one slow device cannot queue
  another device's sends and no call stuck in Go holds up interpreter exit.
* :data:`GO_MAP_LOCK` / :class:`SetupLease` — goneonize keeps its clients in
  plain Go maps without a lock; concurrent writers (the set-up of ``Neonize()``
  and ``Stop()``) would crash the process, so they take this lock. A set-up
  holds it through a lease that is released once, from whichever thread sees
  the first sign of life, or after :data:`SETUP_GRACE_S` at the latest.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

__all__ = ["GO_MAP_LOCK", "SETUP_GRACE_S", "STOP_WAIT_S", "DaemonPool", "SetupLease"]

P = ParamSpec("P")
T = TypeVar("T")

_WorkItem = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonPool(Executor):
    """A lazily started pool of daemon threads for short neonize calls.

    ``ThreadPoolExecutor`` joins its workers at interpreter exit, so a single
    call stuck in Go would hold up shutdown; these threads never do. Threads
    start only when calls queue up, so an idle device costs none.
    """

    def __init__(self, max_workers: int, name: str) -> None:
        self._max_workers = max(1, max_workers)
        self._name = name
        self._queue: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("pool is shut down")
            future: Future[T] = Future()
            self._queue.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max_workers:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args, kwargs = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            threads = list(self._threads)
        if cancel_futures:
            with contextlib.suppress(queue.Empty):
                while True:
                    item = self._queue.get_nowait()
                    if item is not None:
                        item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()

    @property
    def thread_count(self) -> int:
        return len(self._threads)


GO_MAP_LOCK = threading.Lock()
"""Serializes writers of goneonize's unlocked Go maps: ``Neonize()`` set-up and ``Stop()``."""

SETUP_GRACE_S = 0.15
"""Upper bound for holding :data:`GO_MAP_LOCK` while ``Neonize()`` sets up (measured: 2-5 ms, 30-40 ms for a new session file)."""

STOP_WAIT_S = 2.0
"""How long disconnect()/close() wait for Go to let go of a connection before leaving it to its
daemon thread (a stop waits for an in-flight dial, which can take a minute behind a dead proxy)."""


class SetupLease:
    """Holds :data:`GO_MAP_LOCK` for one ``Neonize()`` set-up; released once, from any thread."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False

    def acquire(self) -> None:
        GO_MAP_LOCK.acquire()
        with self._mutex:
            self._held = True

    def release(self) -> None:
        with self._mutex:
            if self._held:
                self._held = False
                GO_MAP_LOCK.release()

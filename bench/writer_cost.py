"""``python -m bench.writer_cost``: what storing a sent message and its two receipts costs the store's
writer thread, in CPU and in the GIL it takes from the event loop.

On SQLite the writer is a thread of the gateway's own process: every Python instruction it runs, and every
parameter the sqlite3 module binds for it, holds the GIL the event loop needs; SQLite's own work does not.
This measures that work alone, on the real store (a SQLite file in a temporary directory): ``--sends``
sends queued as the recorder queues them, in batches of ``--batch`` (a group commit under load holds about
a thousand), each followed by its delivered and read receipts in groups of ``--ids`` ids (the sandbox's
receipts: one per kind and chat per tick). Two figures, each the median of ``--rounds``:

- CPU: the writer's ``_run_batch`` timed with ``time.thread_time()`` (that thread only, whatever else runs
  on the host);
- GIL: the same work again with a pure-Python loop spinning on another thread (:class:`Spinner`, an
  event loop that always has work); what the spinner loses during each commit — the commit's wall time
  less the spinner's turns at its undisturbed rate — is the GIL the writer held, hand-overs included.

    python -m bench.writer_cost [--sends 40000] [--batch 900] [--ids 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import report
from gateway.store import Store, db
from gateway.store.messages import NewMessage, StatusChange

TOKEN, CHAT = "60123456789", "60198765432@s.whatsapp.net"


class Spinner:
    """A pure-Python loop on a thread of its own, standing for an event loop that always has work: the
    time it loses while the writer works is the GIL the writer held (its Python, the parameters the
    sqlite3 module binds for it, the hand-overs), as the event loop of a loaded gateway feels it."""

    def __init__(self) -> None:
        self.count = 0
        self._stop = False
        self._thread = threading.Thread(target=self._spin, name="gil-spinner", daemon=True)

    def _spin(self) -> None:
        while not self._stop:
            self.count += 1

    def rate(self, seconds: float = 0.2, windows: int = 5) -> float:
        """Turns per second with nothing else wanting the GIL (the caller sleeps meanwhile): the best of a
        few short windows, as a slow spell of a shared host would only make the writer look cheaper."""
        best = 0.0
        for _ in range(windows):
            c0, t0 = self.count, time.perf_counter()
            time.sleep(seconds)  # a benchmark's measuring window, not a wait for something
            best = max(best, (self.count - c0) / (time.perf_counter() - t0))
        return best

    def __enter__(self) -> Spinner:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop = True
        self._thread.join()


@contextmanager
def timed_writer(spinner: Spinner | None = None) -> Iterator[tuple[list[float], list[tuple[float, int]]]]:
    """The writer's CPU seconds per group commit while the block runs (``db._run_batch`` wrapped), and
    with a ``spinner``, each commit's wall seconds and the spinner's turns meanwhile."""
    spent: list[float] = []
    walls: list[tuple[float, int]] = []
    original: Callable[..., Any] = db._run_batch

    def run_batch(conn: Any, jobs: list[Any]) -> Any:
        began, wall, turns = time.thread_time(), time.perf_counter(), spinner.count if spinner else 0
        try:
            return original(conn, jobs)
        finally:
            spent.append(time.thread_time() - began)
            if spinner is not None:
                walls.append((time.perf_counter() - wall, spinner.count - turns))

    db._run_batch = run_batch  # type: ignore[assignment]
    try:
        yield spent, walls
    finally:
        db._run_batch = original  # type: ignore[assignment]


def _keep(change: StatusChange) -> tuple[StatusChange, list[Any]]:
    return change, []


async def one(sends: int, batch: int, ids: int, spinner: Spinner | None = None) -> float:
    """Writer CPU microseconds per send (its two receipts included); with a ``spinner``, the GIL
    microseconds per send the writer took from it instead."""
    with tempfile.TemporaryDirectory(prefix="wag-bench-writer-") as tmp:
        store = await Store.open(Path(tmp))
        try:
            rate = spinner.rate() if spinner is not None else 0.0
            with timed_writer(spinner) as (spent, walls):
                now = time.time()
                for start in range(0, sends, batch):
                    queued: set[asyncio.Future[list[Any]]] = set()
                    msg_ids = [f"3EB0{n:016X}" for n in range(start, min(sends, start + batch))]
                    for msg_id in msg_ids:
                        message = NewMessage(
                            token=TOKEN,
                            id=msg_id,
                            chat=CHAT,
                            direction="out",
                            type="text",
                            text="hello from the benchmark",
                            ts=now,
                            status="sent",
                            history=(("pending", now), ("sent", now)),
                            from_me=True,
                            sender=TOKEN,
                        )
                        queued.add(store.submit_sent(message)[0])
                    for status in ("delivered", "read"):
                        for k in range(0, len(msg_ids), ids):
                            queued.add(store.submit_receipt(TOKEN, msg_ids[k : k + ids], status, now, [], _keep)[0])
                    await asyncio.gather(*queued)
            stored = await store.list_messages(TOKEN, limit=1)
            assert stored and stored[0].status == "read", "the last send's read receipt was not applied"
            if spinner is None:
                return sum(spent) / sends * 1e6
            return sum(max(0.0, wall - turns / rate) for wall, turns in walls) / sends * 1e6
        finally:
            await store.close()


def run(sends: int, batch: int, ids: int, rounds: int) -> dict[str, Any]:
    cpu = [asyncio.run(one(sends, batch, ids)) for _ in range(rounds)]
    with Spinner() as spinner:
        gil = [asyncio.run(one(sends, batch, ids, spinner)) for _ in range(rounds)]
    cpu_med, gil_med = round(statistics.median(cpu), 1), round(statistics.median(gil), 1)
    print(f"  writer CPU per send and its two receipts: {cpu_med} µs (rounds: {', '.join(f'{s:.1f}' for s in cpu)})")
    print(f"  GIL it takes from a busy thread beside it: {gil_med} µs (rounds: {', '.join(f'{s:.1f}' for s in gil)})")
    return {
        "params": {"sends": sends, "batch": batch, "ids": ids, "rounds": rounds},
        "rounds": cpu,
        "gil_rounds": gil,
        "targets": {
            "writer_cpu_us_per_send": {"value": cpu_med, "target": "(reported)", "verdict": "INFO"},
            "writer_gil_us_per_send": {"value": gil_med, "target": "(reported)", "verdict": "INFO"},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=900)
    parser.add_argument("--ids", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    out = run(args.sends, args.batch, args.ids, args.rounds)
    report.finish("writer_cost", out)


if __name__ == "__main__":
    main()

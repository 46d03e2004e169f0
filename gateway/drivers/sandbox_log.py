"""What the simulated WhatsApp received, kept across gateway restarts — and, in a cluster, across nodes.

WhatsApp itself is outside the gateway: a message it received stays received
when the gateway is killed, and when the device moves to another node. The
sandbox mirrors that: :class:`SentLog` keeps the newest :data:`MAX_KEPT`
records of ``GET /sandbox/devices/{token}/sent`` in memory, and hands the
records of one turn of the event loop, together, at its end, to where they
are kept:

- :class:`FileSink` (one node): a JSON-lines file beside the device's session
  file (``<token>.db-sent.jsonl``), appended in one ``write`` (no fsync: a
  killed process loses nothing the kernel has; only a power cut could) —
  before anything that follows a send (the campaign's record of it) can reach
  the store. The file is rewritten with the kept records whenever it has
  grown past twice that many lines.
- :class:`WorldSink` (a cluster): the simulated WhatsApp every node shares in
  PostgreSQL (:class:`gateway.drivers.base.SandboxWorld`), which writes every
  device's records of the turn in one statement and keeps the newest
  :data:`MAX_KEPT` per device; the node a device moves to reads them back
  before it builds the device's driver.

Either is read back when the driver is made, so a ``kill -9`` test can compare
what was sent before and after the restart. An edit or revoke writes the
record again under the same id; the last one for an id wins, in the place of
its first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson

from gateway.drivers.base import SandboxWorld, SentRecord

MAX_KEPT = 1000  # what the simulated WhatsApp remembers: sent messages, received ids, media

# id, to, text, when, the rest of the record (None for a plain text)
Entry = SentRecord


class SentSink(Protocol):
    """Where a device's sent records are kept beyond the process."""

    def load(self) -> list[Entry]:
        """The records kept, oldest first (an id may come again: the last one wins, in the place of its first)."""
        ...

    def write(self, batch: list[Entry], kept: deque[Entry]) -> None:
        """The records of one turn of the loop (new ones, and edits under a known id); ``kept``: all in memory."""
        ...

    def close(self) -> None: ...

    def delete(self) -> None:
        """The session is gone (logout, unlink): so is what it sent."""
        ...


class SentLog:
    """The sent records in memory (newest :data:`MAX_KEPT`), each turn's written to ``sink`` at its end."""

    def __init__(self, sink: SentSink) -> None:
        self.sink = sink
        self.entries: deque[Entry] = deque(maxlen=MAX_KEPT)
        self._buffer: list[Entry] = []  # records of this turn of the loop, written at its end
        kept: dict[str, Entry] = {}
        for entry in sink.load():
            kept[entry[0]] = entry
        self.entries.extend(list(kept.values())[-MAX_KEPT:])

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)
        self._write(entry)

    def replace(self, index: int, entry: Entry) -> None:
        """An edit or a revoke of a kept record."""
        self.entries[index] = entry
        self._write(entry)

    def find(self, msg_id: str) -> Entry | None:
        for entry in reversed(self.entries):
            if entry[0] == msg_id:
                return entry
        return None

    def close(self) -> None:
        self._flush()
        self.sink.close()

    def delete(self) -> None:
        self._buffer.clear()
        self.entries.clear()
        self.sink.delete()

    def _write(self, entry: Entry) -> None:
        self._buffer.append(entry)
        if len(self._buffer) > 1:
            return  # the flush is already scheduled
        try:
            asyncio.get_running_loop().call_soon(self._flush)
        except RuntimeError:  # no loop (a synchronous caller): now
            self._flush()

    def _flush(self) -> None:
        batch, self._buffer = self._buffer, []
        if batch:
            self.sink.write(batch, self.entries)


def _line(entry: Entry) -> bytes:
    msg_id, to, text, at, record = entry
    return orjson.dumps([msg_id, to, text, at.timestamp(), record]) + b"\n"


class FileSink:
    """One node: the records as JSON lines in ``path``, compacted past ``2 × MAX_KEPT`` lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._lines = 0

    def load(self) -> list[Entry]:
        try:
            raw = self.path.read_bytes()
        except OSError:
            return []
        out: list[Entry] = []
        lines = raw.splitlines()
        for line in lines:
            try:
                msg_id, to, text, ts, record = orjson.loads(line)
            except (orjson.JSONDecodeError, ValueError, TypeError):
                continue  # a line cut short by a kill: the record before it still counts
            out.append((msg_id, to, text, datetime.fromtimestamp(ts, UTC), record))
        self._lines = len(lines)
        return out

    def write(self, batch: list[Entry], kept: deque[Entry]) -> None:
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self._fd, b"".join(_line(e) for e in batch))
        except OSError:
            return  # the simulation goes on in memory
        self._lines += len(batch)
        if self._lines > 2 * MAX_KEPT:
            self._compact(kept)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def delete(self) -> None:
        self.close()
        self._lines = 0
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _compact(self, kept: deque[Entry]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_bytes(b"".join(_line(e) for e in kept))
            os.replace(tmp, self.path)
        except OSError:
            return
        self.close()
        self._lines = len(kept)


class WorldSink:
    """A cluster: the records in the shared simulated WhatsApp (PostgreSQL), whichever node sends."""

    def __init__(self, world: SandboxWorld, token: str) -> None:
        self.world = world
        self.token = token

    def load(self) -> list[Entry]:
        return self.world.sent_records(self.token)

    def write(self, batch: list[Entry], kept: deque[Entry]) -> None:
        self.world.record_sent(self.token, batch)

    def close(self) -> None:
        """Nothing held here (the driver waits for the world's writes when it closes)."""

    def delete(self) -> None:
        self.world.forget_sent(self.token)

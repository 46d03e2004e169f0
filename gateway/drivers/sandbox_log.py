"""What the simulated WhatsApp received, kept across gateway restarts.

WhatsApp itself is outside the gateway: a message it received stays received
when the gateway is killed. The sandbox mirrors that by appending each record
of ``GET /sandbox/devices/{token}/sent`` to a JSON-lines file beside the
device's session file (``<token>.db-sent.jsonl``) and reading the newest
:data:`MAX_KEPT` back when the driver is made, so a ``kill -9`` test can
compare what was sent before and after the restart.

The lines of one turn of the event loop are written together, at its end, in
one ``write`` (no fsync: a killed process loses nothing the kernel has; only a
power cut could) — before anything that follows a send (the campaign's record
of it) can reach the store. An edit or revoke appends the
record again under the same id; the last line for an id wins, in the place
of its first. The file is rewritten with the kept records whenever it has
grown past twice that many lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

MAX_KEPT = 1000  # what the simulated WhatsApp remembers: sent messages, received ids, media

# id, to, text, when, the rest of the record (None for a plain text)
Entry = tuple[str, str, str | None, datetime, dict[str, Any] | None]


class SentLog:
    """The sent records in memory (newest :data:`MAX_KEPT`) and on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: deque[Entry] = deque(maxlen=MAX_KEPT)
        self._fd: int | None = None
        self._lines = 0
        self._buffer: list[bytes] = []  # lines of this turn of the loop, written at its end
        self._load()

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
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def delete(self) -> None:
        """The session is gone (logout, unlink): so is what it sent."""
        self._buffer.clear()
        self.close()
        self.entries.clear()
        self._lines = 0
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # --- the file -----------------------------------------------------------------

    def _write(self, entry: Entry) -> None:
        msg_id, to, text, at, record = entry
        self._buffer.append(orjson.dumps([msg_id, to, text, at.timestamp(), record]) + b"\n")
        if len(self._buffer) > 1:
            return  # the flush is already scheduled
        try:
            asyncio.get_running_loop().call_soon(self._flush)
        except RuntimeError:  # no loop (a synchronous caller): now
            self._flush()

    def _flush(self) -> None:
        lines, self._buffer = self._buffer, []
        if not lines:
            return
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self._fd, b"".join(lines))
        except OSError:
            return  # the simulation goes on in memory
        self._lines += len(lines)
        if self._lines > 2 * MAX_KEPT:
            self._compact()

    def _compact(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = b"".join(orjson.dumps([e[0], e[1], e[2], e[3].timestamp(), e[4]]) + b"\n" for e in self.entries)
        try:
            tmp.write_bytes(body)
            os.replace(tmp, self.path)
        except OSError:
            return
        self.close()
        self._lines = len(self.entries)

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except OSError:
            return
        kept: dict[str, Entry] = {}
        lines = raw.splitlines()
        for line in lines:
            try:
                msg_id, to, text, ts, record = orjson.loads(line)
            except (orjson.JSONDecodeError, ValueError, TypeError):
                continue  # a line cut short by a kill: the record before it still counts
            kept[msg_id] = (msg_id, to, text, datetime.fromtimestamp(ts, UTC), record)
        self.entries.extend(list(kept.values())[-MAX_KEPT:])
        self._lines = len(lines)

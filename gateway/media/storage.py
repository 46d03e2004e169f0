"""Content-addressed files under ``$DATA_DIR/media/``: ``ab/abcdef…`` named by their sha256.

Bytes arrive as a stream (an upload, a URL body, a download) and are written to a
temporary file in ``media/tmp/`` while they are hashed, so memory stays flat
whatever the size; once complete, the file is renamed to its hash (atomic on one
filesystem). A stream that fails or is cancelled — a client that disconnects
mid-upload — leaves no temporary file behind: :class:`Spool` removes it on any
exit that did not commit it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.media.errors import too_large


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str
    size: int
    path: Path


class Spool:
    """A temporary file being written and hashed; over ``max_bytes`` → MEDIA_TOO_LARGE."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix="spool-", suffix=".part")
        self.fd: int | None = fd
        self.path = Path(name)
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, chunk: bytes | memoryview) -> None:
        if self.fd is None:
            raise ValueError("spool is closed")
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise too_large(self.max_bytes)
        self._hash.update(chunk)
        view = memoryview(chunk)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class MediaFiles:
    """Files by content address under ``root``. ``node``: this process's name when ``root`` is a volume
    several nodes share (a cluster's MEDIA_DIR): its temporary files then live in a directory of its
    own, so a node starting up never sweeps away another's uploads in progress."""

    def __init__(self, root: Path, node: str | None = None) -> None:
        self.root = root
        self.tmp = root / "tmp" if node is None else root / "tmp" / _safe_name(node)

    def prepare(self) -> None:
        """Create the directories (0700) and sweep temporary files a crash left behind."""
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        for leftover in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                leftover.unlink()

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    @contextlib.contextmanager
    def spool(self, max_bytes: int) -> Iterator[Spool]:
        """A :class:`Spool` removed on leaving the block unless :meth:`commit` took it."""
        spool = Spool(self.tmp, max_bytes)
        try:
            yield spool
        finally:
            spool.discard()  # a no-op once committed (the file was renamed away)

    def commit(self, spool: Spool) -> StoredFile:
        """Move a finished spool to its content address (the same bytes stored once)."""
        spool.close()
        sha = spool.sha256
        final = self.path(sha)
        final.parent.mkdir(exist_ok=True, mode=0o700)
        try:
            os.utime(final)  # stored already: fresh again (the orphan sweep and removals go by age)
            spool.discard()
        except FileNotFoundError:  # new — or removed by another node between its check and now
            os.chmod(spool.path, 0o600)
            os.replace(spool.path, final)
        return StoredFile(sha, spool.size, final)

    def put(self, data: bytes, max_bytes: int) -> StoredFile:
        """Store bytes already in memory (base64 ``data``, a converted file read back)."""
        with self.spool(max_bytes) as spool:
            spool.write(data)
            return self.commit(spool)

    def adopt(self, path: Path, max_bytes: int) -> StoredFile:
        """Store a file produced on disk (an ffmpeg output), hashing it in chunks."""
        with self.spool(max_bytes) as spool, path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                spool.write(chunk)
            return self.commit(spool)

    def remove(self, sha256: str, untouched_since: float | None = None) -> None:
        """Remove the file; with ``untouched_since``, only if it was not stored again after that time
        (another node sharing the volume may have just stored the same bytes: :meth:`commit` touches
        the file before its row is written, so a fresh time means a row is on its way)."""
        path = self.path(sha256)
        with contextlib.suppress(FileNotFoundError):
            if untouched_since is not None and path.stat().st_mtime >= untouched_since:
                return
            path.unlink()

    def scratch(self, suffix: str) -> Path:
        """A fresh temporary path for a conversion's output (the caller removes it)."""
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="conv-", suffix=suffix)
        os.close(fd)
        return Path(name)


def _safe_name(node: str) -> str:
    """A node id as one path component (ids are free text: no separators, no dot-names)."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in node)[:64]
    return cleaned or "node"

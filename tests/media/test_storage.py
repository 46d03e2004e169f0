"""Content-addressed storage: streamed, hashed as written, renamed into place, nothing left behind."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.media.errors import MediaError
from gateway.media.storage import MediaFiles


def files(tmp_path: Path) -> MediaFiles:
    f = MediaFiles(tmp_path / "media")
    f.prepare()
    return f


def test_commit_names_the_file_by_its_sha256(tmp_path: Path) -> None:
    f = files(tmp_path)
    data = b"hello media" * 1000
    with f.spool(10**6) as spool:
        for i in range(0, len(data), 333):
            spool.write(data[i : i + 333])
        stored = f.commit(spool)
    sha = hashlib.sha256(data).hexdigest()
    assert stored.sha256 == sha and stored.size == len(data)
    assert stored.path == tmp_path / "media" / sha[:2] / sha and stored.path.read_bytes() == data
    assert list(f.tmp.iterdir()) == []


def test_the_same_bytes_are_stored_once(tmp_path: Path) -> None:
    f = files(tmp_path)
    a, b = f.put(b"same", 100), f.put(b"same", 100)
    assert a.path == b.path and list(f.tmp.iterdir()) == []


def test_over_the_limit_is_media_too_large_and_leaves_no_temp_file(tmp_path: Path) -> None:
    f = files(tmp_path)
    with pytest.raises(MediaError) as err, f.spool(10) as spool:
        spool.write(b"123456")
        spool.write(b"789012")
    assert err.value.code == "MEDIA_TOO_LARGE"
    assert list(f.tmp.iterdir()) == []


async def test_a_cancelled_stream_leaves_no_temp_file(tmp_path: Path) -> None:
    """A client that disconnects mid-upload: the task is cancelled while the spool is half written."""
    f = files(tmp_path)
    started = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        started.set()
        await asyncio.Event().wait()  # the rest never comes
        yield b""

    async def upload() -> None:
        with f.spool(10**6) as spool:
            async for chunk in body():
                spool.write(chunk)
            f.commit(spool)

    task = asyncio.create_task(upload())
    await started.wait()
    assert len(list(f.tmp.iterdir())) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(f.tmp.iterdir()) == []


def test_prepare_sweeps_leftovers_of_a_crash(tmp_path: Path) -> None:
    f = files(tmp_path)
    (f.tmp / "spool-old.part").write_bytes(b"half")
    f.prepare()
    assert list(f.tmp.iterdir()) == []

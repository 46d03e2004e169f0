"""Ids: the formats the contract gives them, and unpredictable (from the OS, not a seeded generator)."""

from __future__ import annotations

import os
import re
import uuid
import warnings

from gateway import ids


def test_request_ids_are_version_4_uuids() -> None:
    for _ in range(2000):
        text = ids.request_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_webhook_and_message_ids_have_their_formats() -> None:
    assert re.fullmatch(r"msg_[0-9a-f]{32}", ids.webhook_id())
    assert re.fullmatch(r"3EB0[0-9A-F]{16}", ids.message_id())


def test_ids_do_not_repeat() -> None:
    for make in (ids.request_id, ids.webhook_id, ids.message_id):
        assert len({make() for _ in range(20_000)}) == 20_000


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    """A seeded generator copied into a fork hands the child the parent's next ids; the OS's does not."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() in a threaded test process
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, f"{ids.request_id()} {ids.webhook_id()} {ids.message_id()}".encode())
        os._exit(0)
    os.close(write)
    mine = f"{ids.request_id()} {ids.webhook_id()} {ids.message_id()}".split()
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    assert len(child) == 3
    assert all(a != b for a, b in zip(mine, child, strict=True))

"""Fixtures shared by the end-to-end tests (the real ``python -m gateway`` process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.proc import ServerProcess


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """The gateway processes a test starts (append each): killed at its end, whatever happened."""
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.kill()

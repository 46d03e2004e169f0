"""Fixtures of the driver tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.silent_proxy import SilentProxy


@pytest.fixture
async def proxy() -> AsyncIterator[SilentProxy]:
    """A silent proxy for the neonize driver's WhatsApp connection: dials hang until ``hang_up()``."""
    silent = SilentProxy()
    await silent.start()
    yield silent
    await silent.stop()

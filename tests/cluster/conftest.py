"""Fixtures of the cluster tests: nodes on one PostgreSQL database and one NATS server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.support.gateway import Gateway
from tests.support.nodes import start_nodes


@pytest.fixture
async def nodes(
    pg_migrated: str, nats_url: str, gateway_factory: Callable[..., Awaitable[Gateway]], tmp_path: Path
) -> list[Gateway]:
    """Two in-process nodes, ``n0`` and ``n1``, on a database with the schema applied (stopped before
    it is dropped)."""
    return await start_nodes(gateway_factory, tmp_path, pg_migrated, nats_url)

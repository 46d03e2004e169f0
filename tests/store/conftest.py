"""The store suite runs on every engine: ``store`` and ``db`` are SQLite on tmp_path, then PostgreSQL
on a fresh database with the schema applied (``pg_migrated``), for every test of this directory. How
the schema is applied to an empty database is the business of test_schema.py and test_postgres.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store import Store
from gateway.store.db import Db

ENGINES = ["sqlite", "postgres"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(engine: str, request: pytest.FixtureRequest) -> str | None:
    """None for SQLite; a fresh PostgreSQL database's URL (only then is one created)."""
    return str(request.getfixturevalue("pg_migrated")) if engine == "postgres" else None


@pytest.fixture
async def store(database_url: str | None, tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path, database_url)
    yield s
    await s.close()


@pytest.fixture
async def db(store: Store) -> Db:
    return store.db

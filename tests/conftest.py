"""Shared fixtures: settings on a temp dir, and the gateway under test.

``gw`` and ``gateway_factory`` give an in-process gateway (the app and its lifespan in the
test's event loop, HTTP over ``httpx.ASGITransport``) — unless the test is marked
``@pytest.mark.live``: then they run it under uvicorn on 127.0.0.1 and a free port, for
WebSockets, raw sockets and anything else that needs a real server. Both have the same API
(``tests.support.gateway.Gateway``). The helpers themselves live in ``tests/support/``.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import subprocess
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.settings import Settings
from tests.support import services
from tests.support.accounts import Tenants
from tests.support.gateway import Gateway, gateway_class
from tests.support.net import free_port
from tests.support.settings import make_settings
from tests.support.webhook_receiver import Receiver

# neonize's import opens `uname -a` with os.popen and never closes it; take
# that one known leak here, silently, so it cannot surface inside a random test.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ResourceWarning)
    import neonize.client
    import neonize.utils.platform  # noqa: F401

    gc.collect()
    # gc parked that Popen in subprocess._active (uname was still running); reap it
    # now, or the next subprocess started by any test frees it and warns there.
    for _proc in list(getattr(subprocess, "_active", None) or []):
        _proc.wait()
    subprocess._cleanup()  # type: ignore[attr-defined]


# The order the workers take tests in (pytest-xdist hands them out one at a time: ``--maxschedchunk=1``
# in pyproject's addopts): whatever starts real processes, a browser or a benchmark first, then what
# needs a PostgreSQL database or a NATS server, then the rest. The longest tests then start while there
# is still plenty else to run beside them, and the run ends on short tests instead of one worker
# finishing a 15 s test alone. Within each class the collection order is kept.
SLOW_MARKERS = ("bench", "e2e", "browser")
SERVICE_FIXTURES = ("postgres_url", "nats_url")  # every database fixture asks for postgres_url


def _start_rank(item: pytest.Item) -> int:
    if any(item.get_closest_marker(m) for m in SLOW_MARKERS):
        return 0
    return 1 if any(f in getattr(item, "fixturenames", ()) for f in SERVICE_FIXTURES) else 2


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_start_rank)


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    structlog.reset_defaults()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def _wants_live(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("live") is not None


@pytest.fixture
async def gw(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    """The gateway on ``settings``: in-process, or under uvicorn when the test is marked ``live``."""
    gateway = gateway_class(_wants_live(request))(settings)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture
async def gateway_factory(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Any]]:
    """Start gateways with custom settings (in-process, or live for a ``live`` test); all stop at teardown."""
    cls = gateway_class(_wants_live(request))
    started: list[Gateway] = []

    async def start(**overrides: Any) -> Gateway:
        gateway = cls(make_settings(overrides.pop("data_dir", tmp_path), **overrides))
        await gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in reversed(started):
        await gateway.stop()


@pytest.fixture
async def tenants(gw: Gateway) -> AsyncIterator[Tenants]:
    """Accounts on ``gw`` (see ``tests.support.accounts``)."""
    t = Tenants(gw)
    yield t
    await t.aclose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the tests: the machine's, or a throwaway one (``tests.support.services``)."""
    with services.postgres() as url:
        yield url


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A NATS server with JetStream for the tests: the machine's, or a throwaway one."""
    with services.nats(tmp_path_factory.mktemp("nats")) as url:
        yield url


def _database_url(server_url: str, name: str) -> str:
    return server_url.rsplit("/", 1)[0] + f"/{name}"


async def _create_database(server_url: str, name: str, template: str = "template1") -> None:
    import asyncpg

    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()


async def _drop_database(server_url: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pg_database(postgres_url: str) -> AsyncIterator[str]:
    """A database of its own for one test (created empty, dropped after): its URL."""
    name = f"t_{secrets.token_hex(6)}"
    await _create_database(postgres_url, name)
    yield _database_url(postgres_url, name)
    await _drop_database(postgres_url, name)


@pytest.fixture(scope="session")
def pg_template(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database with the store's whole schema, made once per worker: what ``pg_migrated`` copies."""
    from gateway.store import Store

    name = f"tmpl_{secrets.token_hex(6)}"

    async def make() -> None:
        await _create_database(postgres_url, name)
        store = await Store.open(tmp_path_factory.mktemp("pg-template"), _database_url(postgres_url, name))
        await store.close()

    asyncio.run(make())
    yield name
    asyncio.run(_drop_database(postgres_url, name))


@pytest.fixture
async def pg_migrated(postgres_url: str, pg_template: str) -> AsyncIterator[str]:
    """Like ``pg_database``, but created with the store's schema already applied (a copy of
    ``pg_template``): for tests of what the store does rather than of how it migrates, which then
    open it in a few milliseconds, without the server applying the schema again for every test."""
    name = f"t_{secrets.token_hex(6)}"
    await _create_database(postgres_url, name, pg_template)
    yield _database_url(postgres_url, name)
    await _drop_database(postgres_url, name)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on 127.0.0.1 that records every hit (``tests.support.webhook_receiver``)."""
    r = await Receiver(free_port()).start()
    yield r
    await r.stop()

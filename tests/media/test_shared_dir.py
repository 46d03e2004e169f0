"""Media on a volume several cluster nodes share (MEDIA_DIR, CONTRACT §14: "media fetched on any node"):
what one node stored, another reads; a link one signed, another verifies; a node starting up leaves the
others' uploads in progress alone; a file another node has just stored again is not removed with a row."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.media.service import MediaService
from gateway.media.signing import load_secret
from gateway.net import GuardedClient
from gateway.store import Store
from tests.media import samples
from tests.support.settings import make_settings

CLUSTER = {"database_url": "postgresql://db/gateway", "bus_url": "nats://bus:4222"}


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[MediaService, MediaService]]:
    """Two nodes' media services: one store (the cluster's database), one MEDIA_DIR, DATA_DIRs of their own."""
    store = await Store.open(tmp_path / "db")
    http = GuardedClient()
    shared = tmp_path / "shared-media"
    services = []
    for name in ("node-a", "node-b"):
        settings = replace(make_settings(tmp_path / name), media_dir=shared, node_id=name, **CLUSTER)
        svc = MediaService(settings, store, http=http)
        await svc.start(prune_every_s=None)
        services.append(svc)
    yield services[0], services[1]
    for svc in services:
        await svc.stop()
    await http.close()
    await store.close()


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_what_one_node_stored_another_reads_and_its_links_verify_there(
    nodes: tuple[MediaService, MediaService],
) -> None:
    a, b = nodes
    png = samples.png((16, 16), (1, 2, 3))
    row = await a.ingest_base64(7, base64.b64encode(png).decode(), filename="a.png")
    assert b.path(await b.get(row.id, 7, False)).read_bytes() == png
    q = _query(a.signed_url(row.id))
    assert b.signer.verify(row.id, q["exp"], q["sig"], time.time())
    assert a.files.root == b.files.root and a.files.tmp != b.files.tmp


async def test_a_node_starting_leaves_another_nodes_upload_in_progress(
    nodes: tuple[MediaService, MediaService],
) -> None:
    a, b = nodes
    with a.files.spool(1 << 20) as spool:
        spool.write(b"half an upload")
        await b.stop()
        await b.start(prune_every_s=None)  # sweeps its own temporary files only
        assert spool.path.exists()


async def test_a_row_deleted_on_one_node_leaves_bytes_another_just_stored_again(
    nodes: tuple[MediaService, MediaService],
) -> None:
    """Node A deletes the only row of some bytes while node B stores the same bytes again: B's file
    (touched when stored) survives A's removal, and B's row still opens."""
    a, b = nodes
    data = base64.b64encode(samples.PDF).decode()
    first = await a.ingest_base64(7, data, filename="x.pdf")
    path = a.path(first)
    os.utime(path, (time.time() - 3600, time.time() - 3600))  # stored an hour ago
    second = await b.ingest_base64(8, data, filename="x.pdf")  # the same bytes, now: touched again
    await a.delete(first.id, 7, False)
    assert path.exists()
    assert b.path(await b.get(second.id, 8, False)).read_bytes() == samples.PDF


async def test_on_one_node_alone_a_deleted_rows_bytes_go_at_once(tmp_path: Path) -> None:
    """The control: a single node (no cluster) removes the file with its last row, fresh or not."""
    store = await Store.open(tmp_path)
    http = GuardedClient()
    svc = MediaService(make_settings(tmp_path), store, http=http)
    await svc.start(prune_every_s=None)
    try:
        row = await svc.ingest_base64(7, base64.b64encode(samples.PDF).decode(), filename="x.pdf")
        path = svc.path(row)
        await svc.delete(row.id, 7, False)
        assert not path.exists()
    finally:
        await svc.stop()
        await http.close()
        await store.close()


def test_nodes_starting_together_agree_on_one_link_secret(tmp_path: Path) -> None:
    """Eight nodes creating the shared secret at the same moment all end up with the same one."""
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_secret(tmp_path), range(8)))
    assert len(keys) == 1 and len(next(iter(keys))) >= 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media_url_secret"]  # no temporary file left

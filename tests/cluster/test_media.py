"""Media on any node (CONTRACT §14) of a 2-node cluster of real processes sharing one MEDIA_DIR: an upload
made through one node is read through the other, and a signed link made by the device's node (in its
incoming-media webhook) opens on the other without a key."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.media import samples
from tests.support.cluster import Cluster, running
from tests.support.poll import until
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

TOKEN = "60120009001"


@pytest.fixture
async def cluster(tmp_path: Path, pg_migrated: str, nats_url: str, receiver: Receiver) -> AsyncIterator[Cluster]:
    async with running(tmp_path, pg_migrated, nats_url, 2, WEBHOOK_URL=receiver.url) as c:
        yield c


async def test_an_upload_through_one_node_is_read_through_the_other(cluster: Cluster) -> None:
    png = samples.png((40, 30), (9, 99, 199))
    async with cluster.client(0) as a, cluster.client(1) as b:
        r = await a.post("/media", files={"file": ("p.png", png, "image/png")})
        assert r.status_code == 200, r.text
        media_id = r.json()["data"]["id"]
        got = await b.get(f"/media/{media_id}")
    assert got.status_code == 200 and got.content == png


async def test_a_signed_link_made_on_the_devices_node_opens_on_the_other(cluster: Cluster, receiver: Receiver) -> None:
    await cluster.add_devices([TOKEN])
    pdf = samples.PDF
    r = await cluster.call(
        "POST",
        f"/sandbox/devices/{TOKEN}/incoming",
        json={"from": "60171222555", "media": {"data": base64.b64encode(pdf).decode(), "filename": "c.pdf"}},
    )
    assert r.status_code == 200, r.text

    def link() -> str | None:
        for hit in receiver.hits:
            body = hit.json()
            if body["event"] == "message.received" and body["token"] == TOKEN:
                url: str = body["data"]["media"]["url"]
                return url
        return None

    url = await until(link, 30, "the incoming media's webhook")
    parts = urlsplit(url)
    for node in cluster.nodes:  # whichever node made it: every node opens it, without a key
        async with httpx.AsyncClient(base_url=node.base) as anonymous:
            got = await anonymous.get(f"{parts.path}?{parts.query}")
        assert got.status_code == 200 and got.content == pdf, node.base

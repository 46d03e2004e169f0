"""The whole gateway on PostgreSQL (DATABASE_URL): pair, send, receipts, an incoming message, its
webhook, the message store and contacts, a whole campaign — then a restart on the same database finds it all again.
And the command line: ``migrate``, and a DATABASE_URL that is not a postgresql:// URL refused."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.constants import OTHER, TOKEN
from tests.support.net import free_port
from tests.support.webhook_receiver import Receiver


async def test_pair_send_receive_and_webhook_on_postgres(
    pg_database: str, gateway_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """(``pg_database`` first: it is dropped after the gateways have stopped.)"""
    receiver = await Receiver(free_port()).start()
    try:
        gw = await gateway_factory(database_url=pg_database, webhook_url=receiver.url)
        assert gw.rt.store.db.engine == "postgres"
        await gw.pair()
        r = await gw.post("/messages", {"token": TOKEN, "to": OTHER, "text": "hello from postgres"})
        assert r.status_code == 200, r.text
        sent_id = r.json()["data"]["messageId"]
        r = await gw.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": OTHER, "name": "Pat", "text": "hi back"})
        assert r.status_code == 200, r.text
        await receiver.wait(lambda hits: "message.received" in [h.json()["event"] for h in hits])
        hit = next(h.json() for h in receiver.hits if h.json()["event"] == "message.received")
        assert hit["data"]["text"] == "hi back"

        async def stored() -> Any:
            r = await gw.http.get(f"/devices/{TOKEN}/messages")
            msgs = r.json()["data"]["messages"]
            by_id = {m["id"]: m for m in msgs}
            return len(msgs) == 2 and by_id.get(sent_id, {}).get("status") in ("delivered", "read") and msgs

        msgs = await gw.until(stored)
        assert [m["direction"] for m in msgs] == ["in", "out"]
        contacts = await gw.until(lambda: _contacts(gw))
        assert [(c["phone"], c["name"]) for c in contacts] == [(OTHER, "Pat")]
        chats = (await gw.http.get(f"/devices/{TOKEN}/chats")).json()["data"]["chats"]
        assert [c["unread"] for c in chats] == [1]
        await gw.stop()

        again = await gateway_factory(database_url=pg_database, data_dir=tmp_path / "other")
        r = await again.http.get(f"/devices/{TOKEN}")
        assert r.status_code == 200 and r.json()["data"]["token"] == TOKEN
        r = await again.http.get(f"/devices/{TOKEN}/messages/{sent_id}")
        assert r.status_code == 200 and r.json()["data"]["text"] == "hello from postgres"
        assert [c["phone"] for c in await _contacts(again)] == [OTHER]
    finally:
        await receiver.stop()


async def test_a_campaign_runs_to_the_end_on_postgres(
    pg_database: str, gateway_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Create (validated, with a duplicate and an invalid number) → paced sends → receipts → completed,
    its recipients streamed as CSV; a restart on the same database finds it, its counters intact."""
    gw = await gateway_factory(database_url=pg_database, campaign_clock_scale=1000)
    await gw.pair()
    people = ["60198765432", "60171222333", "60123400001"]
    recipients = [{"phone": p, "name": f"N{i}"} for i, p in enumerate(people)]
    recipients += [{"phone": people[0]}, {"phone": "12345"}, {"phone": "60123400010"}]  # 0: not on WhatsApp
    body = {"token": TOKEN, "name": "pg", "message": {"text": "Hi {{name}}"}, "recipients": recipients}
    r = await gw.post("/campaigns", {**body, "pace": {"perMinute": 60}})
    assert r.status_code == 201, r.text
    cid = r.json()["data"]["id"]

    async def done() -> Any:
        c = (await gw.http.get(f"/campaigns/{cid}")).json()["data"]
        return c if c["status"] == "completed" and c["read"] == 3 else None

    c = await gw.until(done, timeout=15)
    assert (c["total"], c["sent"], c["delivered"], c["read"], c["failed"], c["skipped"]) == (6, 3, 3, 3, 0, 3)
    out = (await gw.http.get(f"/sandbox/devices/{TOKEN}/sent")).json()["data"]["messages"]
    assert sorted(m["text"] for m in out) == ["Hi N0", "Hi N1", "Hi N2"]
    r = await gw.http.get(f"/campaigns/{cid}/recipients", params={"format": "csv"})
    lines = r.text.strip().splitlines()
    assert len(lines) == 7 and lines[1].startswith(people[0]) and ",read," in lines[1]
    await gw.stop()

    again = await gateway_factory(database_url=pg_database, data_dir=tmp_path / "other")
    c2 = (await again.http.get(f"/campaigns/{cid}")).json()["data"]
    assert (c2["status"], c2["sent"], c2["read"], c2["skipped"]) == ("completed", 3, 3, 3)
    assert [x["id"] for x in (await again.http.get("/campaigns")).json()["data"]["campaigns"]] == [cid]


async def _contacts(gw: Any) -> list[dict[str, Any]]:
    r = await gw.http.get(f"/contacts/{TOKEN}")
    data: list[dict[str, Any]] = r.json()["data"]["contacts"]
    return data


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full |= {"DATA_DIR": str(tmp_path / "data"), "WA_DRIVER": "sandbox", "LOG_FORMAT": "json", **env}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], cwd=tmp_path, env=full, capture_output=True, text=True, timeout=60
    )


def test_migrate_applies_the_schema_once_and_exits(tmp_path: Path, pg_database: str) -> None:
    first = _cli(tmp_path, "migrate", DATABASE_URL=pg_database)
    assert first.returncode == 0, first.stderr
    assert "schema migrated from version 0 to version" in first.stdout
    second = _cli(tmp_path, "migrate", DATABASE_URL=pg_database)
    assert second.returncode == 0 and "schema already at version" in second.stdout
    lite = _cli(tmp_path, "migrate")
    assert lite.returncode == 0 and "SQLite" in lite.stdout and (tmp_path / "data" / "gateway.db").is_file()
    down = _cli(tmp_path, "migrate", DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/x")
    assert down.returncode == 1 and down.stderr.count("\n") == 1 and "migrate failed" in down.stderr


def test_a_database_url_that_is_not_postgresql_is_refused_in_one_line(tmp_path: Path) -> None:
    for bad in ("host=127.0.0.1 dbname=gw password=s3cret", "mysql://u:s3cret@h/db", "sqlite:///x.db"):
        r = _cli(tmp_path, DATABASE_URL=bad)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "DATABASE_URL must be a URL like postgresql://" in r.stderr
        assert "s3cret" not in r.stderr


async def test_the_registry_records_each_devices_jid_and_forgets_it_when_unlinked(
    pg_database: str, gateway_factory: Callable[..., Any]
) -> None:
    """The JID seen at connect (``user:device@server``) is stored with the device — on PostgreSQL it is
    what selects the device's WhatsApp session — and cleared once the phone unlinks it."""
    gw = await gateway_factory(database_url=pg_database)
    await gw.pair()
    row = await gw.until(lambda: _row_with_jid(gw))
    assert row.jid == f"{TOKEN}:1@s.whatsapp.net"
    assert await gw.rt.store.device_jid(TOKEN) == row.jid
    r = await gw.post(f"/sandbox/devices/{TOKEN}/unlink", {})
    assert r.status_code == 200, r.text
    await gw.until(lambda: _status(gw, "logged_out"))
    assert (await gw.rt.store.get_device(TOKEN)).jid is None  # type: ignore[union-attr]
    assert await gw.rt.store.device_jid(TOKEN) is None


async def _row_with_jid(gw: Any) -> Any:
    row = await gw.rt.store.get_device(TOKEN)
    return row if row is not None and row.jid else None


async def _status(gw: Any, status: str) -> bool:
    row = await gw.rt.store.get_device(TOKEN)
    return row is not None and row.status == status

"""``python -m gateway import-sqlite DATA_DIR``: a single-node installation moved into PostgreSQL.

The installation is made the way users make one: a gateway on SQLite (sandbox driver) with devices,
messages both ways, contacts, an account with its keys, an uploaded media file, a scheduled campaign and
the webhook outbox. Its WhatsApp session files are real neonize session files — created by neonize
itself (offline: a connect that cannot dial still creates whatsmeow's store) — but since a *paired*
session needs WhatsApp's servers, the paired device's row is written into the neonize-made file with
whatsmeow's own schema (``tests/support/whatsmeow.py``: random keys, plus rows of tables that cascade
from it). Then the real command runs, in a process of its own, against a database of the test's own.
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.drivers.base import ConnectError, DriverOptions
from gateway.drivers.neonize import NeonizeDriver
from gateway.drivers.neonize.sessions import session_dsn, upgrade_schema
from tests.support.constants import OTHER, TOKEN
from tests.support.whatsmeow import insert_into_session_file

ROOT = Path(__file__).resolve().parents[2]
SECOND = "60177777777"
UNPAIRED = "60122223333"
JID = f"{TOKEN}:11@s.whatsapp.net"
JID2 = f"{SECOND}:4@s.whatsapp.net"


async def _installation(gateway_factory: Callable[..., Any], data: Path) -> None:
    gw = await gateway_factory(data_dir=data, webhook_url="http://127.0.0.1:9/hook")
    for token in (TOKEN, SECOND, UNPAIRED):
        await gw.pair(token)
    r = await gw.post("/messages", {"token": TOKEN, "to": OTHER, "text": "hello"})
    assert r.status_code == 200, r.text
    r = await gw.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": OTHER, "name": "Pat", "text": "hi back"})
    assert r.status_code == 200, r.text
    r = await gw.http.post("/media", files={"file": ("a.txt", b"some bytes", "text/plain")})
    assert r.status_code in (200, 201), r.text
    r = await gw.post("/auth/signup", {"username": "shop", "email": "shop@example.com", "password": "pw-1234567890"})
    assert r.status_code == 200, r.text
    body = {"token": TOKEN, "name": "c", "message": {"text": "hi {{name}}"}, "recipients": [{"phone": OTHER}]}
    body["startAt"] = "2099-01-01T00:00:00Z"
    r = await gw.post("/campaigns", body)
    assert r.status_code == 201, r.text

    async def settled() -> bool:
        rows = await gw.rt.store.db.fetchall("SELECT COUNT(*) FROM messages")
        contacts = await gw.rt.store.db.fetchall("SELECT COUNT(*) FROM contacts")
        return rows[0][0] == 2 and contacts[0][0] >= 1

    await gw.until(settled)
    await gw.stop()


async def _neonize_session_file(data: Path, token: str) -> Path:
    """A session file created by neonize itself: an offline connect creates whatsmeow's store, then fails."""
    driver = NeonizeDriver(token, DriverOptions(data_dir=data, extra={"neonize_preflight": False}))
    try:
        with pytest.raises(ConnectError):
            await driver.connect("qr")
    finally:
        await driver.close()
    assert driver.session_path.is_file()
    return driver.session_path


def _run(data: Path, url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATA_DIR")}
    if url is not None:
        env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "gateway", "import-sqlite", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "DATA_DIR": str(data.parent / "unused")},
    )


def _normal(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, float) and math.isfinite(value):
        return round(value, 6)
    return value


def _sqlite_rows(path: Path, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    db = sqlite3.connect(path)
    try:
        columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
        rows = [tuple(_normal(v) for v in r) for r in db.execute(f"SELECT {', '.join(columns)} FROM {table}")]
    finally:
        db.close()
    return columns, sorted(rows, key=repr)


async def test_import_moves_every_table_and_the_paired_sessions(
    pg_database: str, gateway_factory: Callable[..., Any], tmp_path: Path
) -> None:
    data = tmp_path / "single"
    await _installation(gateway_factory, data)
    paired = await _neonize_session_file(data, TOKEN)
    insert_into_session_file(paired, JID, "Shop phone")
    second = await _neonize_session_file(data, SECOND)
    insert_into_session_file(second, JID2, "Second phone")
    await _neonize_session_file(data, UNPAIRED)  # made by neonize, never paired: no device row
    db_path = data / "gateway.db"
    lite = sqlite3.connect(db_path)
    try:
        tables = [
            r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        ]
        counts = {t: lite.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        lite.close()
    for table in ("devices", "messages", "message_status", "chats", "contacts", "outbox", "media", "accounts"):
        assert counts[table] > 0, f"the installation should hold {table} rows"
    assert counts["campaigns"] == 1 and counts["campaign_recipients"] == 1

    done = await asyncio.to_thread(_run, data, pg_database)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith(f"wa-gateway: imported {data} into PostgreSQL "), line
    assert "3 devices (2 WhatsApp sessions imported with their JIDs" in line and "1 without a paired session" in line
    assert "postgres@" not in line  # no user (or password) in the summary

    conn = await asyncpg.connect(pg_database)
    try:
        for table in tables:  # every row of every table, value for value
            columns, expected = _sqlite_rows(db_path, table)
            got = sorted(
                (tuple(_normal(v) for v in r) for r in await conn.fetch(f"SELECT {', '.join(columns)} FROM {table}")),
                key=repr,
            )
            if table == "devices":
                jid_at = columns.index("jid")
                assert {r[0]: r[jid_at] for r in got} == {TOKEN: JID, SECOND: JID2, UNPAIRED: None}
                # the rest of each row as it was (the sandbox had recorded its own JIDs)
                strip = [tuple(v for i, v in enumerate(r) if i != jid_at) for r in got]
                assert strip == sorted((tuple(v for i, v in enumerate(r) if i != jid_at) for r in expected), key=repr)
            else:
                assert got == expected, table
        sessions = {r[0]: r[1] for r in await conn.fetch("SELECT jid, push_name FROM whatsmeow_device")}
        assert sessions == {JID: "Shop phone", JID2: "Second phone"}
        contacts = await conn.fetch("SELECT our_jid, their_jid FROM whatsmeow_contacts ORDER BY our_jid")
        assert [r["our_jid"] for r in contacts] == [JID, JID2]
        assert await conn.fetchval("SELECT COUNT(*) FROM whatsmeow_pre_keys WHERE uploaded") == 2
        # generated keys continue after the imported ones
        top = await conn.fetchval("SELECT MAX(id) FROM outbox")
        new = await conn.fetchval(
            "INSERT INTO outbox (webhook_id, event, url, body, next_attempt_at, created_at)"
            " VALUES ('w', 'e', 'u', '\\x00', 0, 0) RETURNING id"
        )
        assert new == top + 1
        await conn.execute("DELETE FROM outbox WHERE id = $1", new)
    finally:
        await conn.close()

    # whatsmeow itself loads the imported sessions (GetAllDevices reads each device row through its loader)
    assert await asyncio.to_thread(upgrade_schema, session_dsn(pg_database)) == 2

    again = await asyncio.to_thread(_run, data, pg_database)  # a second run changes nothing
    assert again.returncode == 3, again.stderr
    assert "import-sqlite refused" in again.stderr and "already holds gateway data" in again.stderr
    assert again.stdout == ""
    conn = await asyncpg.connect(pg_database)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM whatsmeow_device") == 2
        assert await conn.fetchval("SELECT COUNT(*) FROM devices") == 3
    finally:
        await conn.close()


async def test_import_refuses_what_it_cannot_do(pg_database: str, tmp_path: Path) -> None:
    """No DATABASE_URL, or a directory without gateway.db: exit 2 with one line, nothing touched."""
    empty = tmp_path / "empty"
    empty.mkdir()
    no_url = await asyncio.to_thread(_run, empty, None)
    assert no_url.returncode == 2 and "needs DATABASE_URL" in no_url.stderr
    no_db = await asyncio.to_thread(_run, empty, pg_database)
    assert no_db.returncode == 2 and "gateway.db does not exist" in no_db.stderr
    assert not list(empty.iterdir())


async def test_import_refuses_two_devices_sharing_one_session(
    pg_database: str, gateway_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """A session file copied to another token would make two devices one WhatsApp session: refused (exit 3)
    before anything is written."""
    data = tmp_path / "single"
    gw = await gateway_factory(data_dir=data)
    for token in (TOKEN, SECOND):
        await gw.pair(token)
    await gw.stop()
    insert_into_session_file(await _neonize_session_file(data, TOKEN), JID, "Shop phone")
    insert_into_session_file(await _neonize_session_file(data, SECOND), JID, "Shop phone")
    done = await asyncio.to_thread(_run, data, pg_database)
    assert done.returncode == 3, done.stderr
    assert f"hold the same WhatsApp device {JID}" in done.stderr
    conn = await asyncpg.connect(pg_database)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM devices") == 0
    finally:
        await conn.close()


async def test_a_sandbox_installation_moves_its_pairings(
    pg_database: str, gateway_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Sandbox session files are not WhatsApp sessions: their pairing moves to where a cluster's sandbox
    keeps it (sandbox_sessions), so the devices stay paired on PostgreSQL."""
    data = tmp_path / "sandbox"
    gw = await gateway_factory(data_dir=data)
    await gw.pair(TOKEN)
    r = await gw.post("/devices", {"token": SECOND})  # created, never scanned: not paired
    assert r.status_code == 200, r.text
    await gw.stop()
    done = await asyncio.to_thread(_run, data, pg_database)
    assert done.returncode == 0, done.stderr
    assert "2 devices (0 WhatsApp sessions" in done.stdout and "1 sandbox pairings" in done.stdout
    conn = await asyncpg.connect(pg_database)
    try:
        assert [r[0] for r in await conn.fetch("SELECT token FROM sandbox_sessions")] == [TOKEN]
        assert await conn.fetchval("SELECT to_regclass('whatsmeow_device')") is None  # neonize never ran
    finally:
        await conn.close()

"""A *paired-looking* whatsmeow device row, for tests that cannot pair with WhatsApp.

Pairing needs WhatsApp's servers, which this machine cannot reach. whatsmeow
loads a device from its ``whatsmeow_device`` row without checking the keys, so
a row written with whatsmeow's own schema (the tables neonize created) and
well-sized random keys is, to goneonize, a paired device it resumes — it just
could never log in. Used on both engines: a neonize-made SQLite session file
and the shared PostgreSQL store.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg

# whatsmeow's CHECK constraints: these columns hold exactly this many bytes.
_SIZES = {
    "noise_key": 32,
    "identity_key": 32,
    "signed_pre_key": 32,
    "signed_pre_key_sig": 64,
    "adv_key": 32,
    "adv_details": 48,
    "adv_account_sig": 64,
    "adv_account_sig_key": 32,
    "adv_device_sig": 64,
}


def device_row(jid: str, push_name: str) -> dict[str, Any]:
    """The columns of one device; the key material is random (it is never used to log in)."""
    row: dict[str, Any] = {name: os.urandom(size) for name, size in _SIZES.items()}
    row.update(
        jid=jid,
        lid=None,
        facebook_uuid=None,
        registration_id=int.from_bytes(os.urandom(3), "big"),
        signed_pre_key_id=1,
        platform="chrome",
        business_name="",
        push_name=push_name,
    )
    return row


def insert_into_session_file(path: Path, jid: str, push_name: str) -> dict[str, Any]:
    """Add a device row (and one row of a table that cascades from it) to a neonize-made SQLite file."""
    row = device_row(jid, push_name)
    db = sqlite3.connect(path)
    try:
        columns = {c[1] for c in db.execute("PRAGMA table_info(whatsmeow_device)")}
        assert columns, f"{path} has no whatsmeow schema: let neonize create it first"
        row = {k: v for k, v in row.items() if k in columns}
        db.execute(
            f"INSERT INTO whatsmeow_device ({','.join(row)}) VALUES ({','.join('?' * len(row))})", list(row.values())
        )
        db.execute(
            "INSERT INTO whatsmeow_contacts (our_jid, their_jid, first_name, full_name, push_name, business_name)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (jid, "60199999999@s.whatsapp.net", "Ann", "Ann Lee", "ann", ""),
        )
        db.execute(
            "INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES (?, ?, ?, ?)",
            (jid, 7, os.urandom(32), True),
        )
        db.commit()
    finally:
        db.close()
    return row


async def insert_into_postgres(url: str, jid: str, push_name: str) -> dict[str, Any]:
    """Add a device row to the shared store (whatsmeow's tables must exist)."""
    row = device_row(jid, push_name)
    conn = await asyncpg.connect(url)
    try:
        names = list(row)
        await conn.execute(
            f"INSERT INTO whatsmeow_device ({','.join(names)})"
            f" VALUES ({','.join(f'${i}' for i in range(1, len(names) + 1))})",
            *row.values(),
        )
    finally:
        await conn.close()
    return row

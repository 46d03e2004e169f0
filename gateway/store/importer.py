"""``python -m gateway import-sqlite DATA_DIR``: a single-node installation moved into PostgreSQL.

What moves, in one PostgreSQL transaction (all of it or nothing):

- every table of ``DATA_DIR/gateway.db`` — registry, accounts, keys,
  sessions, contacts, messages and their status history, chats, media rows,
  campaigns and recipients, the webhook outbox, idempotency keys — after both
  schemas are brought to this gateway's version (SQLite's by opening it,
  PostgreSQL's by :func:`~gateway.store.pg_schema.migrate`, so the two have
  the same tables and columns; ``tests/store/test_schema.py`` holds them to
  it). Values are converted to the PostgreSQL column's type, generated keys
  continue after the imported ones;
- each paired device's whatsmeow session: the rows of its session file
  (``DATA_DIR/<token>.db``, upgraded to the same whatsmeow version by the
  caller) copied into whatsmeow's shared tables, and the device's JID recorded
  in the registry (``devices.jid``), which is what selects the session on
  PostgreSQL.

A second run is refused (:class:`ImportRefused`): the gateway's tables must be
empty and no imported JID may exist yet, so nothing is ever duplicated or
overwritten. Media files stay where they are (``DATA_DIR/media``): the rows
name them by content hash.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from gateway.store.pg_schema import migrate

__all__ = [
    "ImportRefused",
    "ImportSummary",
    "import_sqlite",
    "registry_tokens",
    "sandbox_paired",
    "session_files",
    "whatsmeow_files",
]

_BATCH = 5000
# Keys PostgreSQL generates (BIGSERIAL): their sequences continue after the imported rows.
_SERIALS = (("outbox", "id"), ("messages", "seq"), ("accounts", "id"), ("api_keys", "id"))
# Shared by every device (the LID ↔ phone-number map): merged, never duplicated.
_SHARED_WHATSMEOW = {"whatsmeow_lid_map"}
# Parents first (whatsmeow's foreign keys); the other tables hang off whatsmeow_device only.
_WHATSMEOW_FIRST = ("whatsmeow_device", "whatsmeow_app_state_version")


class ImportRefused(Exception):
    """The import would duplicate or overwrite data (a second run), or its input is not a gateway's."""


@dataclass(slots=True)
class ImportSummary:
    rows: dict[str, int] = field(default_factory=dict)  # gateway table → rows copied
    sessions: dict[str, str] = field(default_factory=dict)  # token → JID of the whatsmeow session imported
    session_rows: int = 0
    unpaired: list[str] = field(default_factory=list)  # devices with no paired session file
    sandbox_paired: int = 0  # sandbox devices whose pairing moved into sandbox_sessions (the cluster's sandbox)
    seconds: float = 0.0

    def line(self) -> str:
        counts = ", ".join(f"{n:,} {t}" for t, n in self.rows.items() if n)
        return (
            f"{self.rows.get('devices', 0):,} devices ({len(self.sessions)} WhatsApp sessions imported with their "
            f"JIDs, {self.session_rows:,} whatsmeow rows; {len(self.unpaired)} without a paired session)"
            + (f"; {self.sandbox_paired} sandbox pairings" if self.sandbox_paired else "")
            + f"; rows: {counts or 'none'}; {self.seconds:.1f} s"
        )


def session_files(data_dir: Path, tokens: list[str]) -> dict[str, Path]:
    """The session file of each token that has one (``DATA_DIR/<token>.db``, as the neonize driver keeps it)."""
    return {t: data_dir / f"{t}.db" for t in tokens if (data_dir / f"{t}.db").is_file()}


def whatsmeow_files(files: dict[str, Path]) -> dict[str, Path]:
    """The files among ``files`` that are neonize sessions (whatsmeow's schema is in them)."""
    return {t: p for t, p in files.items() if _has_table(p, "whatsmeow_device")}


def sandbox_paired(files: dict[str, Path]) -> list[str]:
    """Tokens whose file is a paired sandbox session (the sandbox driver's ``pairing`` table)."""
    paired = []
    for token, path in files.items():
        if _has_table(path, "pairing"):
            with contextlib.closing(_open_ro(path)) as db:
                row = db.execute("SELECT paired FROM pairing LIMIT 1").fetchone()
            if row and row[0]:
                paired.append(token)
    return paired


def _has_table(path: Path, table: str) -> bool:
    try:
        with contextlib.closing(_open_ro(path)) as db:
            query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
            return db.execute(query, (table,)).fetchone() is not None
    except sqlite3.DatabaseError:  # not a SQLite file at all
        return False


def registry_tokens(db_path: Path) -> list[str]:
    with contextlib.closing(_open_ro(db_path)) as db:
        return [r[0] for r in db.execute("SELECT token FROM devices ORDER BY token")]


async def import_sqlite(
    db_path: Path, url: str, sessions: dict[str, Path], sandbox: list[str] | tuple[str, ...] = ()
) -> ImportSummary:
    """Copy ``db_path`` (a migrated ``gateway.db``) and the whatsmeow rows of ``sessions`` into ``url``;
    ``sandbox``: tokens paired on the sandbox driver, recorded where a cluster's sandbox keeps pairings.

    whatsmeow's tables must exist in ``url`` already, at the version of the
    session files (the caller upgrades both with the same neonize).
    """
    started = time.monotonic()
    await migrate(url)
    summary = ImportSummary()
    with contextlib.closing(_open_ro(db_path)) as lite:
        tables = [
            r[0]
            for r in lite.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            )
        ]
        jids = _session_jids(sessions)
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                types = await _pg_types(conn)
                filled = [t for t in tables if lite.execute(f"SELECT EXISTS (SELECT 1 FROM {t})").fetchone()[0]]
                await _refuse_unless_empty(conn, tables, filled, types, list(jids.values()))
                # On PostgreSQL the JID selects the session: a device's is its session's, or none at all
                # (a JID without a session would be refused as logged out at its first connect).
                registry = {token: jids.get(token) for token in registry_tokens(db_path)}
                for table in tables:
                    override = {"jid": registry} if table == "devices" else {}
                    summary.rows[table] = await _copy_table(conn, lite, table, types, override)
                for table, column in _SERIALS:
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                        f" COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
                    )
                for token, jid in jids.items():
                    with contextlib.closing(_open_ro(sessions[token])) as session:
                        summary.session_rows += await _copy_session(conn, session, types)
                    summary.sessions[token] = jid
                if sandbox and "sandbox_sessions" in types:
                    await conn.executemany(
                        "INSERT INTO sandbox_sessions (token) VALUES ($1) ON CONFLICT (token) DO NOTHING",
                        [(token,) for token in sandbox],
                    )
                    summary.sandbox_paired = len(sandbox)
        finally:
            await conn.close()
        summary.unpaired = sorted(set(registry_tokens(db_path)) - set(summary.sessions))
    summary.seconds = time.monotonic() - started
    return summary


def _open_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


def _session_jids(sessions: dict[str, Path]) -> dict[str, str]:
    """token → the JID of the one whatsmeow device in its session file; files without one are unpaired."""
    jids: dict[str, str] = {}
    for token, path in sessions.items():
        with contextlib.closing(_open_ro(path)) as db:
            try:
                rows = [r[0] for r in db.execute("SELECT jid FROM whatsmeow_device")]
            except sqlite3.OperationalError:  # no whatsmeow schema: not a neonize session (never paired)
                continue
        if len(rows) > 1:
            raise ImportRefused(f"{path.name} holds {len(rows)} WhatsApp devices; a session file holds one")
        if rows:
            jids[token] = rows[0]
    seen: dict[str, str] = {}
    for token, jid in jids.items():
        if jid in seen:  # a copied session file: two devices would share one WhatsApp session
            raise ImportRefused(f"the session files of {seen[jid]} and {token} hold the same WhatsApp device {jid}")
        seen[jid] = token
    return jids


async def _pg_types(conn: asyncpg.Connection) -> dict[str, dict[str, str]]:
    """table → column → PostgreSQL type, for the public schema."""
    types: dict[str, dict[str, str]] = {}
    for r in await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
    ):
        types.setdefault(r["table_name"], {})[r["column_name"]] = r["data_type"]
    return types


async def _refuse_unless_empty(
    conn: asyncpg.Connection,
    tables: list[str],
    filled: list[str],
    types: dict[str, dict[str, str]],
    jids: list[str],
) -> None:
    """Nothing imported may meet rows already there: each table the file fills must be empty in PostgreSQL
    (a table the file leaves empty may hold what a node already wrote, such as its own heartbeat)."""
    missing = [t for t in tables if t not in types]
    if missing:
        raise ImportRefused(f"PostgreSQL lacks the tables {', '.join(missing)}: is gateway.db from a newer gateway?")
    full = [t for t in filled if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {t})")]
    if full:
        raise ImportRefused(
            f"the PostgreSQL database already holds gateway data (tables {', '.join(full)} are not empty): "
            "import-sqlite runs once, into an empty store (was it imported already?)"
        )
    if jids and "whatsmeow_device" in types:
        present = [r[0] for r in await conn.fetch("SELECT jid FROM whatsmeow_device WHERE jid = ANY($1)", jids)]
        if present:
            raise ImportRefused(f"the WhatsApp sessions {', '.join(present)} are in PostgreSQL already")


def _converter(pg_type: str) -> Callable[[Any], Any]:
    """A SQLite value → what asyncpg sends for a column of ``pg_type`` (None stays None)."""

    def convert(kind: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return lambda v: None if v is None else kind(v)

    if pg_type in ("bigint", "integer", "smallint"):
        return convert(int)
    if pg_type in ("double precision", "real", "numeric"):
        return convert(float)
    if pg_type == "boolean":
        return convert(lambda v: v.lower() in ("1", "t", "true") if isinstance(v, str) else bool(v))
    if pg_type == "bytea":
        return convert(lambda v: v.encode() if isinstance(v, str) else bytes(v))
    if pg_type == "uuid":
        return convert(lambda v: uuid.UUID(bytes=bytes(v)) if isinstance(v, bytes | memoryview) else uuid.UUID(v))
    return convert(lambda v: v.decode() if isinstance(v, bytes) else str(v))


def _batches(rows: sqlite3.Cursor) -> Iterator[list[tuple[Any, ...]]]:
    while batch := rows.fetchmany(_BATCH):
        yield batch


async def _copy_table(
    conn: asyncpg.Connection,
    lite: sqlite3.Connection,
    table: str,
    types: dict[str, dict[str, str]],
    override: dict[str, dict[str, str | None]],
) -> int:
    """Every row of ``table`` into PostgreSQL's twin; ``override``: column → {key column value → value}."""
    columns = [c[1] for c in lite.execute(f"PRAGMA table_info({table})")]
    target = types.get(table, {})
    unknown = [c for c in columns if c not in target]
    if unknown:
        raise ImportRefused(f"PostgreSQL's {table} lacks the columns {', '.join(unknown)}")
    convert = [_converter(target[c]) for c in columns]
    replace = [(columns.index(c), values) for c, values in override.items() if c in columns]
    key = columns.index("token") if replace else 0  # the registry's token names the row of an override
    copied = 0
    for batch in _batches(lite.execute(f"SELECT {', '.join(columns)} FROM {table}")):
        records = []
        for row in batch:
            values = [f(v) for f, v in zip(convert, row, strict=True)]
            for index, by_key in replace:
                if row[key] in by_key:
                    values[index] = by_key[row[key]]
            records.append(tuple(values))
        await conn.copy_records_to_table(table, records=records, columns=columns)
        copied += len(records)
    return copied


async def _copy_session(conn: asyncpg.Connection, session: sqlite3.Connection, types: dict[str, dict[str, str]]) -> int:
    """One session file's whatsmeow rows into the shared tables (their JID is new there: checked before)."""
    names = [
        r[0] for r in session.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'whatsmeow%'")
    ]
    ordered = [t for t in _WHATSMEOW_FIRST if t in names] + sorted(
        t for t in names if t not in _WHATSMEOW_FIRST and t != "whatsmeow_version"
    )
    copied = 0
    for table in ordered:
        if table not in types:
            raise ImportRefused(f"PostgreSQL lacks whatsmeow's {table}: run the same neonize version everywhere")
        if table in _SHARED_WHATSMEOW:
            copied += await _merge_table(conn, session, table, types)
        else:
            copied += await _copy_table(conn, session, table, types, {})
    return copied


async def _merge_table(
    conn: asyncpg.Connection, lite: sqlite3.Connection, table: str, types: dict[str, dict[str, str]]
) -> int:
    """Rows of a table every device shares: the ones PostgreSQL has already are kept."""
    columns = [c[1] for c in lite.execute(f"PRAGMA table_info({table})")]
    convert = [_converter(types[table][c]) for c in columns]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
    copied = 0
    for batch in _batches(lite.execute(f"SELECT {', '.join(columns)} FROM {table}")):
        await conn.executemany(sql, [tuple(f(v) for f, v in zip(convert, row, strict=True)) for row in batch])
        copied += len(batch)
    return copied

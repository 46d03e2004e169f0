"""The store's schema on PostgreSQL: the twin of every migration of :mod:`gateway.store.schema`.

Entry *n* here makes the same tables, columns and indexes as entry *n* there,
in PostgreSQL's types (INTEGER → BIGINT, REAL → DOUBLE PRECISION, BLOB →
BYTEA, generated keys BIGSERIAL, case-insensitive uniqueness as an index on
``lower()``). ``tests/store/test_schema.py`` compares both engines' tables
column by column, so a migration appended there without its twin here fails
the suite. Append-only, like its twin.

:func:`migrate` applies what a database lacks, recording each version in
``gateway_schema``, under a session advisory lock: nodes starting at once
migrate one after another (the second finds nothing left to do), never
side by side.
"""

from __future__ import annotations

import asyncpg

from gateway.store.schema import MIGRATIONS

LOCK_KEY = 0x7761_6777_7363  # "wagwsc": pg_advisory_lock's key for schema changes

PG_MIGRATIONS: list[str] = [
    # 1: devices, contacts, webhook outbox, idempotency, accounts
    """
    CREATE TABLE devices (
        token            TEXT PRIMARY KEY,
        owner_id         BIGINT,
        name             TEXT,
        method           TEXT NOT NULL DEFAULT 'qr',
        status           TEXT NOT NULL,
        reconnecting     BIGINT NOT NULL DEFAULT 0,
        webhook_url      TEXT,
        webhook_events   TEXT,
        pushname         TEXT,
        platform         TEXT,
        phone            TEXT,
        messages_sent    BIGINT NOT NULL DEFAULT 0,
        messages_received BIGINT NOT NULL DEFAULT 0,
        created_at       TEXT NOT NULL,
        connected_at     TEXT,
        last_update      TEXT NOT NULL
    );
    CREATE INDEX devices_owner ON devices(owner_id);

    CREATE TABLE contacts (
        token      TEXT NOT NULL,
        phone      TEXT NOT NULL,
        name       TEXT,
        source     TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen  TEXT NOT NULL,
        owner_id   BIGINT,
        PRIMARY KEY (token, phone)
    );
    CREATE INDEX contacts_order ON contacts(token, first_seen, phone);

    CREATE TABLE outbox (
        id              BIGSERIAL PRIMARY KEY,
        webhook_id      TEXT NOT NULL,
        event           TEXT NOT NULL,
        token           TEXT,
        owner_id        BIGINT,
        url             TEXT NOT NULL,
        check_private   BIGINT NOT NULL DEFAULT 0,
        body            BYTEA NOT NULL,
        status          TEXT NOT NULL DEFAULT 'pending',
        attempts        BIGINT NOT NULL DEFAULT 0,
        last_error      TEXT,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        created_at      DOUBLE PRECISION NOT NULL,
        delivered_at    DOUBLE PRECISION
    );
    CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
    CREATE INDEX outbox_token ON outbox(token, id);

    CREATE TABLE idempotency (
        scope      TEXT NOT NULL,
        key        TEXT NOT NULL,
        body_hash  TEXT NOT NULL,
        response   TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (scope, key)
    );

    CREATE TABLE accounts (
        id             BIGSERIAL PRIMARY KEY,
        username       TEXT NOT NULL,
        email          TEXT NOT NULL,
        password_hash  TEXT NOT NULL,
        webhook_url    TEXT,
        webhook_events TEXT,
        created_at     TEXT NOT NULL
    );
    CREATE UNIQUE INDEX accounts_username ON accounts(lower(username));
    CREATE UNIQUE INDEX accounts_email ON accounts(lower(email));

    CREATE TABLE api_keys (
        id           BIGSERIAL PRIMARY KEY,
        account_id   BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        key_hash     TEXT NOT NULL UNIQUE,
        prefix       TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        revoked_at   TEXT
    );

    CREATE TABLE auth_sessions (
        token_hash TEXT PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        revoked    BIGINT NOT NULL DEFAULT 0
    );
    """,
    # 2 (accounts): keys minted at login live and die with their session
    """
    ALTER TABLE api_keys ADD COLUMN expires_at DOUBLE PRECISION;
    ALTER TABLE api_keys ADD COLUMN session_hash TEXT;
    CREATE INDEX api_keys_session ON api_keys(session_hash) WHERE session_hash IS NOT NULL;
    CREATE INDEX api_keys_account ON api_keys(account_id);
    """,
    # 3 (media): uploads and downloaded media
    """
    CREATE TABLE media (
        id          TEXT PRIMARY KEY,
        owner_id    BIGINT,
        sha256      TEXT NOT NULL,
        mimetype    TEXT NOT NULL,
        size        BIGINT NOT NULL,
        filename    TEXT,
        source      TEXT NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL,
        expires_at  DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX media_expiry ON media(expires_at);
    CREATE INDEX media_created ON media(created_at);
    CREATE INDEX media_sha ON media(sha256);
    """,
    # 4 (messages): every message sent or received, its status history, and the chats they form
    """
    CREATE TABLE messages (
        seq         BIGSERIAL PRIMARY KEY,
        token       TEXT NOT NULL,
        id          TEXT NOT NULL,
        chat        TEXT NOT NULL,
        direction   TEXT NOT NULL,
        from_me     BIGINT NOT NULL DEFAULT 0,
        sender      TEXT,
        sender_lid  TEXT,
        sender_name TEXT,
        type        TEXT NOT NULL,
        text        TEXT,
        payload     TEXT,
        status      TEXT NOT NULL,
        status_at   DOUBLE PRECISION NOT NULL,
        error       TEXT,
        ts          DOUBLE PRECISION NOT NULL,
        edited_at   DOUBLE PRECISION,
        revoked_at  DOUBLE PRECISION
    );
    CREATE UNIQUE INDEX messages_id ON messages(token, id);
    CREATE INDEX messages_token ON messages(token, seq);
    CREATE INDEX messages_chat ON messages(token, chat, seq);

    CREATE TABLE message_status (
        seq    BIGINT NOT NULL,
        status TEXT NOT NULL,
        at     DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (seq, status)
    );

    CREATE TABLE chats (
        token    TEXT NOT NULL,
        jid      TEXT NOT NULL,
        name     TEXT,
        is_group BIGINT NOT NULL,
        last_seq BIGINT NOT NULL,
        last_at  DOUBLE PRECISION NOT NULL,
        unread   BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (token, jid)
    );
    CREATE INDEX chats_recent ON chats(token, last_seq);
    """,
    # 5 (media): incoming media whose download failed, with the driver's reference
    """
    CREATE TABLE media_pending (
        token       TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        owner_id    BIGINT,
        type        TEXT NOT NULL,
        mimetype    TEXT NOT NULL,
        size        BIGINT,
        filename    TEXT,
        voice_note  BIGINT NOT NULL DEFAULT 0,
        ref_driver  TEXT NOT NULL,
        ref_data    TEXT NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (token, message_id)
    );
    CREATE INDEX media_pending_created ON media_pending(created_at);
    """,
    # 6 (webhook secrets): per-account and per-device signing secrets, each outbox row's target
    """
    ALTER TABLE accounts ADD COLUMN webhook_secret TEXT;
    ALTER TABLE accounts ADD COLUMN webhook_secret_prev TEXT;
    ALTER TABLE accounts ADD COLUMN webhook_secret_prev_until DOUBLE PRECISION;
    ALTER TABLE devices ADD COLUMN webhook_secret TEXT;
    ALTER TABLE outbox ADD COLUMN target TEXT;
    """,
    # 7 (outbox claims): which dispatcher holds a delivery, until when
    """
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claim_until DOUBLE PRECISION;
    """,
    # 8 (campaigns): campaigns and their recipients
    """
    CREATE TABLE campaigns (
        id          TEXT PRIMARY KEY,
        owner_id    BIGINT,
        token       TEXT NOT NULL,
        name        TEXT NOT NULL,
        message     TEXT NOT NULL,
        pace        TEXT NOT NULL,
        validate    BIGINT NOT NULL,
        status      TEXT NOT NULL,
        error       TEXT,
        total       BIGINT NOT NULL DEFAULT 0,
        pending     BIGINT NOT NULL DEFAULT 0,
        sent        BIGINT NOT NULL DEFAULT 0,
        delivered   BIGINT NOT NULL DEFAULT 0,
        read        BIGINT NOT NULL DEFAULT 0,
        failed      BIGINT NOT NULL DEFAULT 0,
        skipped     BIGINT NOT NULL DEFAULT 0,
        created_at  DOUBLE PRECISION NOT NULL,
        start_at    DOUBLE PRECISION,
        started_at  DOUBLE PRECISION,
        finished_at DOUBLE PRECISION
    );
    CREATE INDEX campaigns_owner ON campaigns(owner_id, created_at);
    CREATE INDEX campaigns_token ON campaigns(token, status);

    CREATE TABLE campaign_recipients (
        campaign_id TEXT NOT NULL,
        seq         BIGINT NOT NULL,
        token       TEXT NOT NULL,
        phone       TEXT NOT NULL,
        name        TEXT,
        vars        TEXT,
        status      TEXT NOT NULL,
        reason      TEXT,
        message_id  TEXT,
        sent_at     DOUBLE PRECISION,
        status_at   DOUBLE PRECISION,
        PRIMARY KEY (campaign_id, seq)
    );
    CREATE INDEX campaign_recipients_next ON campaign_recipients(campaign_id, status, seq);
    CREATE INDEX campaign_recipients_message ON campaign_recipients(token, message_id);
    """,
    # 9 (cluster, CONTRACT §14): the live nodes, one lease per device with its fencing token, and the sandbox
    # driver's simulated WhatsApp (pairing, and every connection it saw: a device connected twice is visible).
    # Times are the database's (now()): every node judges a lease on the same clock.
    """
    CREATE TABLE nodes (
        id         TEXT PRIMARY KEY,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        heartbeat  TIMESTAMPTZ NOT NULL DEFAULT now()
    );

    CREATE SEQUENCE lease_fence;
    CREATE TABLE device_leases (
        token       TEXT PRIMARY KEY,
        node        TEXT NOT NULL,
        fence       BIGINT NOT NULL,
        acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        expires_at  TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX device_leases_node ON device_leases(node);

    CREATE TABLE sandbox_sessions (
        token     TEXT PRIMARY KEY,
        paired_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE sandbox_connections (
        id          BIGSERIAL PRIMARY KEY,
        token       TEXT NOT NULL,
        node        TEXT NOT NULL,
        backend_pid INTEGER NOT NULL,
        opened_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
        closed_at   TIMESTAMPTZ,
        closed_why  TEXT,
        overlapped  BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX sandbox_connections_open ON sandbox_connections(token) WHERE closed_at IS NULL;
    """,
    # 10 (neonize on PostgreSQL): the device's full WhatsApp JID, which selects its whatsmeow session
    """
    ALTER TABLE devices ADD COLUMN jid TEXT;
    """,
    # 11 (cluster): the fence at whatsmeow's own tables. whatsmeow writes its sessions over its own
    # connections, which the gateway names ``whatsmeow <node id>`` (application_name, cut to PostgreSQL's 63
    # bytes). A row trigger on each per-device table of whatsmeow (installed by
    # gateway.store.whatsmeow.install_whatsmeow_fence after whatsmeow's own upgrade has made them) runs this
    # function: a write by a session named after a node of the cluster (a row of ``nodes``) to the rows of a
    # device the registry knows (devices.jid) is refused unless that node holds the device's unexpired lease.
    # Every other session (operators, migrations, import-sqlite, the gateway's own store, a single node
    # without a cluster, whose name no ``nodes`` row matches) and every device the registry does not know yet
    # (being paired) pass. Argument: the column that holds the device's JID. Lookups: nodes (a row per node),
    # devices by jid (the index below), device_leases by its key.
    """
    CREATE INDEX devices_jid ON devices(jid) WHERE jid IS NOT NULL;

    CREATE FUNCTION gateway_whatsmeow_fence() RETURNS trigger LANGUAGE plpgsql AS $fence$
    DECLARE
        v_app   text := current_setting('application_name');
        v_node  text;
        v_jid   text;
        v_token text;
        v_known boolean := false;
        v_held  boolean := false;
    BEGIN
        IF v_app LIKE 'whatsmeow %' THEN
            SELECT n.id INTO v_node FROM nodes n WHERE left('whatsmeow ' || n.id, 63) = v_app LIMIT 1;
        END IF;
        IF v_node IS NOT NULL THEN
            IF TG_OP = 'DELETE' THEN
                IF TG_ARGV[0] = 'our_jid' THEN v_jid := OLD.our_jid;
                ELSIF TG_ARGV[0] = 'jid' THEN v_jid := OLD.jid;
                ELSE v_jid := to_jsonb(OLD) ->> TG_ARGV[0];
                END IF;
            ELSE
                IF TG_ARGV[0] = 'our_jid' THEN v_jid := NEW.our_jid;
                ELSIF TG_ARGV[0] = 'jid' THEN v_jid := NEW.jid;
                ELSE v_jid := to_jsonb(NEW) ->> TG_ARGV[0];
                END IF;
            END IF;
            -- the device's token(s) by JID, then each one's lease by its key (never by node: a node holds
            -- hundreds); simple statements: ~25 us a row where one query joining them took twice that
            FOR v_token IN SELECT d.token FROM devices d WHERE d.jid = v_jid LOOP
                v_known := true;
                v_held := EXISTS (SELECT 1 FROM device_leases l
                                  WHERE l.token = v_token AND l.node = v_node AND l.expires_at > now());
                EXIT WHEN v_held;
            END LOOP;
            IF v_known AND NOT v_held THEN
                RAISE EXCEPTION 'wa-gateway fence: node % does not hold the lease of WhatsApp device %', v_node, v_jid
                    USING ERRCODE = 'insufficient_privilege',
                          DETAIL = format('%s on %s refused', TG_OP, TG_TABLE_NAME),
                          HINT = 'the device belongs to another node now (this node''s lease expired or moved)';
            END IF;
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END
    $fence$;
    """,
    # 12 (cluster): what the sandbox's simulated WhatsApp received from each device, whichever node sent it
    # (GET /sandbox/devices/{token}/sent); on one node a file beside the session. ``seq`` orders it (an edit
    # keeps its record's place); the newest 1,000 per device are kept (gateway/store/sandbox_world.py).
    """
    CREATE TABLE sandbox_sent (
        token  TEXT NOT NULL,
        id     TEXT NOT NULL,
        seq    BIGSERIAL NOT NULL,
        to_jid TEXT NOT NULL,
        text   TEXT,
        at     DOUBLE PRECISION NOT NULL,
        record TEXT,
        PRIMARY KEY (token, id)
    );
    CREATE INDEX sandbox_sent_order ON sandbox_sent(token, seq);
    """,
]


# Tables only PostgreSQL has (migrations 9 and 12): what nodes of a cluster share. SQLite's twins are empty.
PG_ONLY_TABLES = frozenset({"nodes", "device_leases", "sandbox_sessions", "sandbox_connections", "sandbox_sent"})


class SchemaError(Exception):
    """The database cannot be used by this gateway as it is (one clear sentence)."""


async def migrate(url: str) -> tuple[int, int]:
    """Apply the migrations the database lacks, under the advisory lock; (version before, after)."""
    if len(PG_MIGRATIONS) != len(MIGRATIONS):  # a migration landed without its twin: refuse, never half-migrate
        raise SchemaError(
            f"the PostgreSQL schema has {len(PG_MIGRATIONS)} migrations, SQLite's {len(MIGRATIONS)}: "
            "gateway/store/pg_schema.py lacks a twin"
        )
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS gateway_schema (version INTEGER PRIMARY KEY)")
            before = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM gateway_schema"))
            if before > len(PG_MIGRATIONS):
                raise SchemaError(
                    f"the database's schema is at version {before}, newer than this gateway's "
                    f"({len(PG_MIGRATIONS)}): run the same gateway version on every node"
                )
            for number, script in enumerate(PG_MIGRATIONS[before:], start=before + 1):
                async with conn.transaction():
                    await conn.execute(script)
                    await conn.execute("INSERT INTO gateway_schema (version) VALUES ($1)", number)
            return before, len(PG_MIGRATIONS)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()

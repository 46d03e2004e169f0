"""The store's schema (``gateway.db``), as ordered migrations.

Each entry moves the schema one version up; ``PRAGMA user_version`` records
where a file stands. Append new migrations, never edit a released one.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: devices, contacts, webhook outbox, idempotency, accounts
    """
    CREATE TABLE devices (
        token            TEXT PRIMARY KEY,
        owner_id         INTEGER,
        name             TEXT,
        method           TEXT NOT NULL DEFAULT 'qr',
        status           TEXT NOT NULL,
        reconnecting     INTEGER NOT NULL DEFAULT 0,
        webhook_url      TEXT,
        webhook_events   TEXT,
        pushname         TEXT,
        platform         TEXT,
        phone            TEXT,
        messages_sent    INTEGER NOT NULL DEFAULT 0,
        messages_received INTEGER NOT NULL DEFAULT 0,
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
        owner_id   INTEGER,
        PRIMARY KEY (token, phone)
    ) WITHOUT ROWID;
    CREATE INDEX contacts_order ON contacts(token, first_seen, phone);

    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        webhook_id      TEXT NOT NULL,
        event           TEXT NOT NULL,
        token           TEXT,
        owner_id        INTEGER,
        url             TEXT NOT NULL,
        check_private   INTEGER NOT NULL DEFAULT 0,
        body            BLOB NOT NULL,
        status          TEXT NOT NULL DEFAULT 'pending',
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        next_attempt_at REAL NOT NULL,
        created_at      REAL NOT NULL,
        delivered_at    REAL
    );
    CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
    CREATE INDEX outbox_token ON outbox(token, id);

    CREATE TABLE idempotency (
        scope      TEXT NOT NULL,
        key        TEXT NOT NULL,
        body_hash  TEXT NOT NULL,
        response   TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (scope, key)
    ) WITHOUT ROWID;

    CREATE TABLE accounts (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        username       TEXT NOT NULL UNIQUE COLLATE NOCASE,
        email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash  TEXT NOT NULL,
        webhook_url    TEXT,
        webhook_events TEXT,
        created_at     TEXT NOT NULL
    );

    CREATE TABLE api_keys (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        key_hash     TEXT NOT NULL UNIQUE,
        prefix       TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        revoked_at   TEXT
    );

    CREATE TABLE auth_sessions (
        token_hash TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        revoked    INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 2 (accounts): keys minted at login live and die with their session
    """
    ALTER TABLE api_keys ADD COLUMN expires_at REAL;
    ALTER TABLE api_keys ADD COLUMN session_hash TEXT;
    CREATE INDEX api_keys_session ON api_keys(session_hash) WHERE session_hash IS NOT NULL;
    CREATE INDEX api_keys_account ON api_keys(account_id);
    """,
    # 3 (media): uploads and downloaded media; files under $DATA_DIR/media/ named by sha256, so rows
    # may share a file (the same bytes uploaded twice). Plain types only: a PostgreSQL twin is the same DDL.
    """
    CREATE TABLE media (
        id          TEXT PRIMARY KEY,
        owner_id    INTEGER,
        sha256      TEXT NOT NULL,
        mimetype    TEXT NOT NULL,
        size        INTEGER NOT NULL,
        filename    TEXT,
        source      TEXT NOT NULL,
        created_at  REAL NOT NULL,
        expires_at  REAL NOT NULL
    );
    CREATE INDEX media_expiry ON media(expires_at);
    CREATE INDEX media_created ON media(created_at);
    CREATE INDEX media_sha ON media(sha256);
    """,
    # 4 (messages): every message sent or received, its status history, and the chats they form.
    # seq is the rowid: the cursor of the message list (stable under concurrent inserts). Timestamps
    # are unix seconds (REAL); payload is JSON of §11's optional fields. Plain SQL types and no
    # SQLite-only syntax besides WITHOUT ROWID, so a PostgreSQL twin is a copy (BIGSERIAL for seq).
    """
    CREATE TABLE messages (
        seq         INTEGER PRIMARY KEY,
        token       TEXT NOT NULL,
        id          TEXT NOT NULL,
        chat        TEXT NOT NULL,
        direction   TEXT NOT NULL,
        from_me     INTEGER NOT NULL DEFAULT 0,
        sender      TEXT,
        sender_lid  TEXT,
        sender_name TEXT,
        type        TEXT NOT NULL,
        text        TEXT,
        payload     TEXT,
        status      TEXT NOT NULL,
        status_at   REAL NOT NULL,
        error       TEXT,
        ts          REAL NOT NULL,
        edited_at   REAL,
        revoked_at  REAL
    );
    CREATE UNIQUE INDEX messages_id ON messages(token, id);
    CREATE INDEX messages_token ON messages(token, seq);
    CREATE INDEX messages_chat ON messages(token, chat, seq);

    CREATE TABLE message_status (
        seq    INTEGER NOT NULL,
        status TEXT NOT NULL,
        at     REAL NOT NULL,
        PRIMARY KEY (seq, status)
    ) WITHOUT ROWID;

    CREATE TABLE chats (
        token    TEXT NOT NULL,
        jid      TEXT NOT NULL,
        name     TEXT,
        is_group INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        last_at  REAL NOT NULL,
        unread   INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (token, jid)
    ) WITHOUT ROWID;
    CREATE INDEX chats_recent ON chats(token, last_seq);
    """,
    # 5 (media): incoming media whose download failed, with the driver's reference, so
    # POST /devices/{token}/messages/{id}/media can retry it
    """
    CREATE TABLE media_pending (
        token       TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        owner_id    INTEGER,
        type        TEXT NOT NULL,
        mimetype    TEXT NOT NULL,
        size        INTEGER,
        filename    TEXT,
        voice_note  INTEGER NOT NULL DEFAULT 0,
        ref_driver  TEXT NOT NULL,
        ref_data    TEXT NOT NULL,
        created_at  REAL NOT NULL,
        PRIMARY KEY (token, message_id)
    );
    CREATE INDEX media_pending_created ON media_pending(created_at);
    """,
    # 6 (webhook secrets): each account's signing secret (and the one it replaced, honoured until
    # webhook_secret_prev_until), a device's own; each outbox row names its kind of target
    # (operator | device | account), which picks the secret that signs it and who may see it.
    # Rows older than this migration get their target at start (Store.classify_deliveries).
    """
    ALTER TABLE accounts ADD COLUMN webhook_secret TEXT;
    ALTER TABLE accounts ADD COLUMN webhook_secret_prev TEXT;
    ALTER TABLE accounts ADD COLUMN webhook_secret_prev_until REAL;
    ALTER TABLE devices ADD COLUMN webhook_secret TEXT;
    ALTER TABLE outbox ADD COLUMN target TEXT;
    """,
    # 7 (outbox claims): a delivery taken by a dispatcher (claimed_by: its node) until claim_until, so
    # several nodes can share one outbox (Store.claim_deliveries: FOR UPDATE SKIP LOCKED on PostgreSQL),
    # and a dead node's claims run out or are released with its lease
    """
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claim_until REAL;
    """,
    # 8 (campaigns): paced bulk sends. One row per recipient given (skipped ones too, with their reason), in
    # the order given (seq). A recipient's send is recorded before (status 'sending' with the message id it
    # will go out under: its idempotency key) and after ('sent' / 'failed'). The counters on campaigns move
    # in the same transactions as the recipients, so reading a campaign never counts rows. Plain types only:
    # a PostgreSQL twin is the same DDL.
    """
    CREATE TABLE campaigns (
        id          TEXT PRIMARY KEY,
        owner_id    INTEGER,
        token       TEXT NOT NULL,
        name        TEXT NOT NULL,
        message     TEXT NOT NULL,
        pace        TEXT NOT NULL,
        validate    INTEGER NOT NULL,
        status      TEXT NOT NULL,
        error       TEXT,
        total       INTEGER NOT NULL DEFAULT 0,
        pending     INTEGER NOT NULL DEFAULT 0,
        sent        INTEGER NOT NULL DEFAULT 0,
        delivered   INTEGER NOT NULL DEFAULT 0,
        read        INTEGER NOT NULL DEFAULT 0,
        failed      INTEGER NOT NULL DEFAULT 0,
        skipped     INTEGER NOT NULL DEFAULT 0,
        created_at  REAL NOT NULL,
        start_at    REAL,
        started_at  REAL,
        finished_at REAL
    );
    CREATE INDEX campaigns_owner ON campaigns(owner_id, created_at);
    CREATE INDEX campaigns_token ON campaigns(token, status);

    CREATE TABLE campaign_recipients (
        campaign_id TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        token       TEXT NOT NULL,
        phone       TEXT NOT NULL,
        name        TEXT,
        vars        TEXT,
        status      TEXT NOT NULL,
        reason      TEXT,
        message_id  TEXT,
        sent_at     REAL,
        status_at   REAL,
        PRIMARY KEY (campaign_id, seq)
    );
    CREATE INDEX campaign_recipients_next ON campaign_recipients(campaign_id, status, seq);
    CREATE INDEX campaign_recipients_message ON campaign_recipients(token, message_id);
    """,
    # 9 (cluster, CONTRACT §14): nodes, device leases and the sandbox's shared WhatsApp exist on PostgreSQL only
    # (pg_schema.PG_ONLY_TABLES); SQLite is one process, it has nothing to share. Kept so both lists stay twins.
    """
    SELECT 1;
    """,
    # 10 (neonize on PostgreSQL): the device's full WhatsApp JID (user:device@server, from get_me() once
    # connected). With DATABASE_URL every device's whatsmeow session shares one database, and the JID is
    # what selects it: never "the first row". Recorded on SQLite too, so import-sqlite can cross-check.
    """
    ALTER TABLE devices ADD COLUMN jid TEXT;
    """,
    # 11 (cluster): the fence on whatsmeow's tables is PostgreSQL's alone (a trigger function checking the
    # leases): on SQLite each device's session is a file of one process. Kept so both lists stay twins.
    """
    SELECT 1;
    """,
    # 12 (cluster): the sandbox's shared record of what each device sent is PostgreSQL's alone; one node keeps
    # it in a file beside the device's session (gateway/drivers/sandbox_log.py). Kept so both lists stay twins.
    """
    SELECT 1;
    """,
]

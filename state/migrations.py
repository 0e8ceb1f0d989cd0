"""Schema versions for the SQLite store, applied in order and recorded in PRAGMA user_version."""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: the spine
    """
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        dedup_key TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        model TEXT NOT NULL,
        record_id TEXT NOT NULL,
        received_at TEXT NOT NULL,
        hint TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at TEXT NOT NULL,
        note TEXT,
        request_id TEXT
    );
    CREATE INDEX inbox_due ON inbox(status, next_at);

    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        ref_key TEXT NOT NULL,
        source TEXT NOT NULL,
        model TEXT NOT NULL,
        record_id TEXT NOT NULL,
        reference TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        stage INTEGER NOT NULL,
        platform TEXT NOT NULL,
        requester TEXT,
        business_unit TEXT,
        exception_type TEXT,
        packet TEXT NOT NULL,
        plan TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    -- One open request per ERP record: a second webhook for it refreshes, never duplicates.
    CREATE UNIQUE INDEX requests_one_open ON requests(ref_key) WHERE status = 'open';
    CREATE INDEX requests_reference ON requests(reference);
    CREATE INDEX requests_status ON requests(status, updated_at);

    CREATE TABLE stages (
        request_id TEXT NOT NULL,
        stage INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT,
        decided_at TEXT,
        decided_by TEXT,
        PRIMARY KEY (request_id, stage)
    );

    CREATE TABLE votes (
        request_id TEXT NOT NULL,
        stage INTEGER NOT NULL,
        person TEXT NOT NULL,
        verb TEXT NOT NULL,
        version INTEGER NOT NULL,
        comment TEXT,
        at TEXT NOT NULL,
        PRIMARY KEY (request_id, stage, person)
    );

    CREATE TABLE cards (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL,
        stage INTEGER NOT NULL,
        platform TEXT NOT NULL,
        kind TEXT NOT NULL,
        address TEXT NOT NULL,
        person TEXT,
        conversation TEXT NOT NULL,
        message_id TEXT NOT NULL,
        posted_at TEXT NOT NULL,
        UNIQUE (request_id, stage, platform, address)
    );
    CREATE INDEX cards_message ON cards(conversation, message_id);

    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        request_id TEXT,
        payload TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        done_at TEXT
    );
    CREATE INDEX outbox_due ON outbox(status, next_at);

    CREATE TABLE decision_log (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        request_id TEXT,
        event TEXT NOT NULL,
        actor TEXT NOT NULL,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX decision_log_request ON decision_log(request_id, seq);
    -- The log is append-only inside Handoff; `handoff log verify` catches edits made around these triggers.
    CREATE TRIGGER decision_log_no_update BEFORE UPDATE ON decision_log
        BEGIN SELECT RAISE(ABORT, 'decision_log is append-only'); END;
    CREATE TRIGGER decision_log_no_delete BEFORE DELETE ON decision_log
        BEGIN SELECT RAISE(ABORT, 'decision_log is append-only'); END;

    CREATE TABLE conversations (
        platform TEXT NOT NULL,
        key TEXT NOT NULL,
        reference TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (platform, key)
    );

    CREATE TABLE seen_deliveries (
        key TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    """,
    # 2: time and stalls. The scheduler reads only due rows through partial indexes, so a tick stays an index range
    # scan however many requests are open.
    """
    ALTER TABLE stages ADD COLUMN due_at TEXT;           -- next scheduler step; NULL until planned
    ALTER TABLE stages ADD COLUMN due_step INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE stages ADD COLUMN escalated_at TEXT;
    CREATE INDEX stages_unplanned ON stages(request_id, stage) WHERE status = 'pending' AND due_at IS NULL;
    CREATE INDEX stages_due ON stages(due_at) WHERE status = 'pending' AND due_at IS NOT NULL;

    -- One row per reminder point and recipient: a point is never reminded twice, across restarts too.
    CREATE TABLE reminders (
        request_id TEXT NOT NULL,
        stage INTEGER NOT NULL,
        step INTEGER NOT NULL,
        recipient TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        PRIMARY KEY (request_id, stage, step, recipient)
    );

    -- One alert per stall, posted once and then updated in place; `dirty` means the chat copy is behind.
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        subject TEXT NOT NULL UNIQUE,
        request_id TEXT,
        text TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        resolved_at TEXT,
        dirty INTEGER NOT NULL DEFAULT 1,
        next_try_at TEXT NOT NULL,
        platform TEXT,
        conversation TEXT,
        message_id TEXT
    );
    CREATE INDEX alerts_open ON alerts(subject) WHERE resolved_at IS NULL;
    CREATE INDEX alerts_dirty ON alerts(next_try_at) WHERE dirty = 1;

    CREATE TABLE digests (
        day TEXT PRIMARY KEY,
        sent_at TEXT NOT NULL
    );
    """,
    # 3: delegations, reassigned stages, reconciliation cursors
    """
    CREATE TABLE delegations (
        delegator TEXT PRIMARY KEY,
        delegate TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL
    );
    CREATE TABLE reassignments (
        request_id TEXT NOT NULL,
        stage INTEGER NOT NULL,
        person TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (request_id, stage)
    );
    CREATE TABLE erp_cursors (
        source TEXT PRIMARY KEY,
        cursor TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 4: how often the outbox item was claimed, so a delivery after a claim that never finished (a crash) looks first
    # for what the lost claim may already have done.
    """
    ALTER TABLE outbox ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: escalation chains: how many steps along its chain a stage has been escalated (escalated_at: the latest step).
    # A stage escalated before chains existed took the first step.
    """
    ALTER TABLE stages ADD COLUMN escalation_level INTEGER NOT NULL DEFAULT 0;
    UPDATE stages SET escalation_level = 1 WHERE escalated_at IS NOT NULL;
    """,
    # 6: the inbox also keeps Slack clicks (kind 'click'), stored before Slack gets its answer, so a crash after the
    # answer loses none; ERP events are kind 'event'. Each reader takes its own kind.
    """
    ALTER TABLE inbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'event';
    DROP INDEX inbox_due;
    CREATE INDEX inbox_due ON inbox(kind, status, next_at);
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to the newest version; returns the version reached."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;")
    return len(MIGRATIONS)

-- Synapse, the CDC relay: dead letters, relay heartbeats and the active index collection.
-- PostgreSQL relays claim outbox rows with FOR UPDATE SKIP LOCKED inside an open transaction; the lease columns
-- exist on both backends so the outbox has one shape (they stay NULL here).
ALTER TABLE garden_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE garden_outbox ADD COLUMN claimed_until TIMESTAMPTZ;

CREATE TABLE synapse_dead_letter (
    id            BIGSERIAL PRIMARY KEY,
    outbox_seq    BIGINT NOT NULL,
    entry_id      UUID NOT NULL,
    persona       TEXT NOT NULL,
    operation     TEXT NOT NULL,
    entry_version BIGINT NOT NULL,
    step          TEXT NOT NULL,
    error         TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    failed_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX idx_dead_letter_entry ON synapse_dead_letter (entry_id);

CREATE TABLE synapse_heartbeat (
    relay_id    TEXT PRIMARY KEY,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    last_beat   TIMESTAMPTZ NOT NULL,
    interval_s  DOUBLE PRECISION NOT NULL,
    stats       JSONB NOT NULL DEFAULT '{}'::jsonb
);

-- One row: the collection searches read and relays write, and (during a reindex) the one being built.
CREATE TABLE synapse_state (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    active_collection  TEXT NOT NULL,
    active_embedder    TEXT NOT NULL,
    active_dimension   INTEGER NOT NULL,
    pending_collection TEXT,
    pending_embedder   TEXT,
    pending_dimension  INTEGER,
    generation         BIGINT NOT NULL DEFAULT 1,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Synapse, the CDC relay: leases on outbox rows, dead letters, relay heartbeats and the active index collection.
-- A relay leases rows (claimed_by / claimed_until) instead of holding a transaction open; an expired lease is
-- claimable again, so a crashed relay loses nothing.
ALTER TABLE garden_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE garden_outbox ADD COLUMN claimed_until TEXT;
CREATE INDEX idx_outbox_claimed ON garden_outbox (entry_id, claimed_until);

CREATE TABLE synapse_dead_letter (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_seq    INTEGER NOT NULL,
    entry_id      TEXT NOT NULL,
    persona       TEXT NOT NULL,
    operation     TEXT NOT NULL,
    entry_version INTEGER NOT NULL,
    step          TEXT NOT NULL,
    error         TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    failed_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))
) STRICT;
CREATE INDEX idx_dead_letter_entry ON synapse_dead_letter (entry_id);

CREATE TABLE synapse_heartbeat (
    relay_id    TEXT PRIMARY KEY,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    last_beat   TEXT NOT NULL,
    interval_s  REAL NOT NULL,
    stats       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(stats))
) STRICT;

-- One row: the collection searches read and relays write, and (during a reindex) the one being built.
CREATE TABLE synapse_state (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    active_collection  TEXT NOT NULL,
    active_embedder    TEXT NOT NULL,
    active_dimension   INTEGER NOT NULL,
    pending_collection TEXT,
    pending_embedder   TEXT,
    pending_dimension  INTEGER,
    generation         INTEGER NOT NULL DEFAULT 1,
    updated_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))
) STRICT;

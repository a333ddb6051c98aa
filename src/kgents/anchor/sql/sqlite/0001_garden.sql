-- The PersonaGarden, its outbox (for the Synapse relay) and its audit trail, kept by triggers.
-- Timestamps are ISO-8601 text in UTC with microseconds, so text order is time order.
CREATE TABLE persona_garden (
    id                     TEXT PRIMARY KEY,
    persona                TEXT NOT NULL,
    content                TEXT NOT NULL CHECK (length(trim(content)) > 0),
    entry_type             TEXT NOT NULL CHECK (entry_type IN ('PREFERENCE', 'PATTERN', 'VALUE', 'BEHAVIOR', 'INSIGHT')),
    lifecycle              TEXT NOT NULL CHECK (lifecycle IN ('SEED', 'SAPLING', 'TREE', 'FLOWER', 'COMPOST')),
    confidence             REAL NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    planted_at             TEXT NOT NULL,
    last_nurtured          TEXT NOT NULL,
    eigenvector_affinities TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(eigenvector_affinities)),
    evidence               TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(evidence)),
    tags                   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
    version                INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1)
) STRICT;
CREATE INDEX idx_garden_persona_lifecycle ON persona_garden (persona, lifecycle);
CREATE INDEX idx_garden_persona_confidence ON persona_garden (persona, confidence DESC, id);
CREATE INDEX idx_garden_persona_type ON persona_garden (persona, entry_type);

CREATE TABLE garden_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id        TEXT NOT NULL,
    persona         TEXT NOT NULL,
    operation       TEXT NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    entry_version   INTEGER NOT NULL,
    payload         TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    last_error      TEXT
) STRICT;
CREATE INDEX idx_outbox_due ON garden_outbox (next_attempt_at, seq);
CREATE INDEX idx_outbox_entry ON garden_outbox (entry_id);

CREATE TABLE garden_audit (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id      TEXT NOT NULL,
    persona       TEXT NOT NULL,
    operation     TEXT NOT NULL,
    entry_version INTEGER NOT NULL,
    old_row       TEXT,
    new_row       TEXT,
    changed_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))
) STRICT;
CREATE INDEX idx_audit_entry ON garden_audit (persona, entry_id, seq);

-- Identity never changes and every update bumps the version by exactly one: the relay's version guard relies on it.
CREATE TRIGGER garden_guard BEFORE UPDATE ON persona_garden
WHEN NEW.id <> OLD.id OR NEW.persona <> OLD.persona OR NEW.version <> OLD.version + 1
BEGIN
    SELECT RAISE(ABORT, 'a garden update must keep id and persona and set version to the old version + 1');
END;

CREATE TRIGGER garden_capture_insert AFTER INSERT ON persona_garden
BEGIN
    INSERT INTO garden_outbox (entry_id, persona, operation, entry_version, payload)
        VALUES (NEW.id, NEW.persona, 'INSERT', NEW.version, {{row:NEW}});
    INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
        VALUES (NEW.id, NEW.persona, 'INSERT', NEW.version, NULL, {{row:NEW}});
END;

CREATE TRIGGER garden_capture_update AFTER UPDATE ON persona_garden
BEGIN
    INSERT INTO garden_outbox (entry_id, persona, operation, entry_version, payload)
        VALUES (NEW.id, NEW.persona, 'UPDATE', NEW.version, {{row:NEW}});
    INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
        VALUES (NEW.id, NEW.persona, 'UPDATE', NEW.version, {{row:OLD}}, {{row:NEW}});
END;

CREATE TRIGGER garden_capture_delete AFTER DELETE ON persona_garden
BEGIN
    INSERT INTO garden_outbox (entry_id, persona, operation, entry_version, payload)
        VALUES (OLD.id, OLD.persona, 'DELETE', OLD.version, NULL);
    INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
        VALUES (OLD.id, OLD.persona, 'DELETE', OLD.version, {{row:OLD}}, NULL);
END;

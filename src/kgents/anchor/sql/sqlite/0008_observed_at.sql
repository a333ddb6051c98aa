-- When what an entry says was observed (an imported conversation keeps its date). NULL on rows from before this
-- migration: readers take planted_at then (no backfill, so the audit and outbox triggers stay quiet).
ALTER TABLE persona_garden ADD COLUMN observed_at TEXT;
CREATE INDEX idx_garden_persona_observed ON persona_garden (persona, coalesce(observed_at, planted_at));

-- The audit and outbox rows carry observed_at too, as PostgreSQL's to_jsonb(row) does.
DROP TRIGGER garden_capture_insert;
DROP TRIGGER garden_capture_update;
DROP TRIGGER garden_capture_delete;

CREATE TRIGGER garden_capture_insert AFTER INSERT ON persona_garden
BEGIN
    INSERT INTO garden_outbox (entry_id, persona, operation, entry_version, payload)
        VALUES (NEW.id, NEW.persona, 'INSERT', NEW.version, {{row_observed:NEW}});
    INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
        VALUES (NEW.id, NEW.persona, 'INSERT', NEW.version, NULL, {{row_observed:NEW}});
END;

CREATE TRIGGER garden_capture_update AFTER UPDATE ON persona_garden
BEGIN
    INSERT INTO garden_outbox (entry_id, persona, operation, entry_version, payload)
        VALUES (NEW.id, NEW.persona, 'UPDATE', NEW.version, {{row_observed:NEW}});
    INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
        VALUES (NEW.id, NEW.persona, 'UPDATE', NEW.version, {{row_observed:OLD}}, {{row_observed:NEW}});
END;

CREATE TRIGGER garden_capture_delete AFTER DELETE ON persona_garden
BEGIN
    INSERT INTO garden_outbox (entry_id, persona, operation, entry_version, payload)
        VALUES (OLD.id, OLD.persona, 'DELETE', OLD.version, NULL);
    INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
        VALUES (OLD.id, OLD.persona, 'DELETE', OLD.version, {{row_observed:OLD}}, NULL);
END;

-- A bounded anchor. The outbox carries the key, the operation and the version only: the relay re-reads the row, so
-- the JSON copy of the entry each write stored there was never read. Pruning (tombstones every index has applied,
-- dead letters and audit rows past their retention) finds its rows by these indexes.
DROP TRIGGER garden_capture_insert;
DROP TRIGGER garden_capture_update;
DROP TRIGGER garden_capture_delete;

CREATE TRIGGER garden_capture_insert AFTER INSERT ON persona_garden
BEGIN
    INSERT INTO garden_outbox (entry_id, persona, operation, entry_version)
        VALUES (NEW.id, NEW.persona, 'INSERT', NEW.version);
    INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
        VALUES (NEW.id, NEW.persona, 'INSERT', NEW.version, NULL, {{row_observed:NEW}});
END;

CREATE TRIGGER garden_capture_update AFTER UPDATE ON persona_garden
BEGIN
    INSERT INTO garden_outbox (entry_id, persona, operation, entry_version)
        VALUES (NEW.id, NEW.persona, 'UPDATE', NEW.version);
    INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
        VALUES (NEW.id, NEW.persona, 'UPDATE', NEW.version, {{row_observed:OLD}}, {{row_observed:NEW}});
END;

CREATE TRIGGER garden_capture_delete AFTER DELETE ON persona_garden
BEGIN
    INSERT INTO garden_outbox (entry_id, persona, operation, entry_version)
        VALUES (OLD.id, OLD.persona, 'DELETE', OLD.version);
    INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
        VALUES (OLD.id, OLD.persona, 'DELETE', OLD.version, {{row_observed:OLD}}, NULL);
END;

ALTER TABLE garden_outbox DROP COLUMN payload;
CREATE INDEX idx_tombstone_deleted ON garden_tombstone (deleted_at);
CREATE INDEX idx_dead_letter_failed ON synapse_dead_letter (failed_at);
CREATE INDEX idx_audit_changed ON garden_audit (changed_at);

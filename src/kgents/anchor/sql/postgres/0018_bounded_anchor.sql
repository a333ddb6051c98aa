-- A bounded anchor. The outbox carries the key, the operation and the version only: the relay re-reads the row, so
-- the JSON copy of the entry each write stored there was never read. Pruning (tombstones every index has applied,
-- dead letters and audit rows past their retention) finds its rows by these indexes.
CREATE OR REPLACE FUNCTION garden_capture() RETURNS trigger LANGUAGE plpgsql SET search_path = {{schema}}, pg_catalog AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO garden_outbox (entry_id, persona, operation, entry_version)
            SELECT n.id, n.persona, 'INSERT', n.version FROM new_rows n;
        INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
            SELECT n.id, n.persona, 'INSERT', n.version, NULL, to_jsonb(n) FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO garden_outbox (entry_id, persona, operation, entry_version)
            SELECT n.id, n.persona, 'UPDATE', n.version FROM new_rows n;
        INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
            SELECT n.id, n.persona, 'UPDATE', n.version, to_jsonb(o), to_jsonb(n)
            FROM new_rows n JOIN old_rows o ON o.id = n.id;
    ELSE
        INSERT INTO garden_outbox (entry_id, persona, operation, entry_version)
            SELECT o.id, o.persona, 'DELETE', o.version FROM old_rows o;
        INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
            SELECT o.id, o.persona, 'DELETE', o.version, to_jsonb(o), NULL FROM old_rows o;
    END IF;
    PERFORM pg_notify('kgents_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END $$;

ALTER TABLE garden_outbox DROP COLUMN payload;
CREATE INDEX idx_tombstone_deleted ON garden_tombstone (deleted_at);
CREATE INDEX idx_dead_letter_failed ON synapse_dead_letter (failed_at);
CREATE INDEX idx_audit_changed ON garden_audit (changed_at);

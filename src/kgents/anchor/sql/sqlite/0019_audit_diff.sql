-- The audit of an update keeps only what changed: old_row and new_row hold the fields whose value differs (the
-- version always does), each side's values. A plant and a delete keep the whole row. On a nurture this stores a
-- few fields instead of two copies of the entry (`bench/health_cost.py` prints the bytes per update).
DROP TRIGGER garden_capture_update;

CREATE TRIGGER garden_capture_update AFTER UPDATE ON persona_garden
BEGIN
    INSERT INTO garden_outbox (entry_id, persona, operation, entry_version)
        VALUES (NEW.id, NEW.persona, 'UPDATE', NEW.version);
    INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
        SELECT NEW.id, NEW.persona, 'UPDATE', NEW.version,
               json_group_object(o.key, CASE WHEN o.type IN ('object', 'array') THEN json(o.value) ELSE o.value END),
               json_group_object(n.key, CASE WHEN n.type IN ('object', 'array') THEN json(n.value) ELSE n.value END)
        FROM json_each({{row_observed:OLD}}) o JOIN json_each({{row_observed:NEW}}) n ON n.key = o.key
        WHERE o.value IS NOT n.value OR o.type IS NOT n.type;
END;

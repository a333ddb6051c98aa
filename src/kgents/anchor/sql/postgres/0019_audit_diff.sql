-- The audit of an update keeps only what changed: old_row and new_row hold the fields whose value differs (the
-- version always does), each side's values. A plant and a delete keep the whole row. On a nurture this stores a
-- few fields instead of two copies of the entry (`bench/health_cost.py` prints the bytes per update).
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
            SELECT n.id, n.persona, 'UPDATE', n.version, d.old_row, d.new_row
            FROM new_rows n JOIN old_rows o ON o.id = n.id
            CROSS JOIN LATERAL (
                SELECT jsonb_object_agg(e.key, e.value) AS old_row, jsonb_object_agg(e.key, to_jsonb(n) -> e.key) AS new_row
                FROM jsonb_each(to_jsonb(o)) e WHERE e.value IS DISTINCT FROM to_jsonb(n) -> e.key
            ) d;
    ELSE
        INSERT INTO garden_outbox (entry_id, persona, operation, entry_version)
            SELECT o.id, o.persona, 'DELETE', o.version FROM old_rows o;
        INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
            SELECT o.id, o.persona, 'DELETE', o.version, to_jsonb(o), NULL FROM old_rows o;
    END IF;
    PERFORM pg_notify('kgents_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END $$;

-- Versions never go backwards for an id, across deletes: a deleted entry leaves a tombstone with its last version,
-- and an entry planted again under that id continues from it (the store reads the tombstone; the guard below
-- refuses any insert that would not). The index's version guard then lets the new row overwrite whatever a relay
-- wrote for the old one, and a stale write of the old row can never pass for the new one.
CREATE TABLE garden_tombstone (
    id           UUID PRIMARY KEY,
    last_version BIGINT NOT NULL,
    deleted_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION garden_tombstone() RETURNS trigger LANGUAGE plpgsql SET search_path = {{schema}}, pg_catalog AS $$
BEGIN
    INSERT INTO garden_tombstone AS t (id, last_version)
        SELECT o.id, o.version FROM old_rows o
        ON CONFLICT (id) DO UPDATE
            SET last_version = greatest(t.last_version, excluded.last_version), deleted_at = clock_timestamp();
    RETURN NULL;
END $$;
CREATE TRIGGER garden_tombstone_delete AFTER DELETE ON persona_garden
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION garden_tombstone();

-- Set-based, once per statement (a 10,000-row plant_many pays one join, not 10,000 row triggers).
CREATE FUNCTION garden_version_floor() RETURNS trigger LANGUAGE plpgsql SET search_path = {{schema}}, pg_catalog AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n JOIN garden_tombstone t ON t.id = n.id WHERE n.version <= t.last_version) THEN
        RAISE EXCEPTION 'a garden entry planted again under a deleted id must continue its old version'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER garden_version_floor AFTER INSERT ON persona_garden
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION garden_version_floor();
